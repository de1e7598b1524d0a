use std::sync::Arc;

use super::api::dev_sink::DevSink;
use super::api::failover::FailoverProvider;
use super::api::simulator::SimMode;
use super::{DeliveryError, NotificationProvider, SECRET, client_for, email, spawn_sim};

#[tokio::test]
async fn failing_primary_falls_over_to_healthy_secondary() {
    let (primary_addr, primary) = spawn_sim().await;
    let (secondary_addr, secondary) = spawn_sim().await;
    primary.set_mode(SimMode::Fail500);
    let failover = FailoverProvider::new(vec![
        Arc::new(client_for(primary_addr, SECRET).with_name("notify-primary")),
        Arc::new(client_for(secondary_addr, SECRET).with_name("notify-secondary")),
    ]);
    assert_eq!(failover.name(), "failover[notify-primary,notify-secondary]");

    let id = failover
        .send(&email("ada@example.com"))
        .await
        .expect("delivered");

    assert!(primary.messages().is_empty());
    let delivered = secondary.messages();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].id, id);
    assert_eq!(delivered[0].to, "ada@example.com");
}

#[tokio::test]
async fn permanent_error_from_primary_is_returned_without_trying_others() {
    let (primary_addr, primary) = spawn_sim().await;
    let backup = DevSink::new();
    let failover = FailoverProvider::new(vec![
        // Wrong secret: Notify answers 403, which is permanent.
        Arc::new(client_for(
            primary_addr,
            "00000000-0000-4000-8000-000000000000",
        )),
        Arc::new(backup.clone()),
    ]);

    let err = failover.send(&email("ada@example.com")).await.unwrap_err();

    assert!(
        matches!(&err, DeliveryError::Permanent(t) if t.contains("403")),
        "{err:?}"
    );
    assert!(primary.messages().is_empty());
    assert!(backup.messages().is_empty(), "backup must not be used");
}

#[tokio::test]
async fn all_failing_is_transient_with_every_reason() {
    let (a_addr, a) = spawn_sim().await;
    let (b_addr, b) = spawn_sim().await;
    a.set_mode(SimMode::Fail429);
    b.set_mode(SimMode::Fail500);
    let failover = FailoverProvider::new(vec![
        Arc::new(client_for(a_addr, SECRET).with_name("a")),
        Arc::new(client_for(b_addr, SECRET).with_name("b")),
    ]);

    let err = failover.send(&email("ada@example.com")).await.unwrap_err();

    assert_eq!(
        err,
        DeliveryError::Transient(
            "all providers failed: a: HTTP 429 (RateLimitError); b: HTTP 500 (Exception)".into()
        )
    );
}

#[tokio::test]
async fn misconfigured_fallback_does_not_turn_a_transient_outage_permanent() {
    let (a_addr, a) = spawn_sim().await;
    let (b_addr, _b) = spawn_sim().await;
    a.set_mode(SimMode::Fail500);
    let failover = FailoverProvider::new(vec![
        Arc::new(client_for(a_addr, SECRET).with_name("a")),
        Arc::new(client_for(b_addr, "00000000-0000-4000-8000-000000000000").with_name("b")),
    ]);

    let err = failover.send(&email("ada@example.com")).await.unwrap_err();
    assert!(err.is_transient(), "outbox should retry later: {err:?}");
}

#[tokio::test]
async fn empty_chain_fails_permanently() {
    let err = FailoverProvider::new(vec![])
        .send(&email("a@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Permanent(_)));
}
