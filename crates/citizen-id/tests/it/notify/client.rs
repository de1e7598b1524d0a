//! The real NotifyClient against the simulator (and, for the wire format, a
//! bare capture server that checks the JWT independently of our own code).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::hmac;
use axum::Json;
use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::api::simulator::SimMode;
use super::{
    DeliveryError, NotificationProvider, SECRET, SERVICE_ID, TEMPLATE_ID, client_for, email, sms,
    spawn_sim,
};

#[tokio::test]
async fn delivers_email_and_returns_notify_id() {
    let (addr, sim) = spawn_sim().await;
    let client = client_for(addr, SECRET);

    let id = client
        .send(&email("ada@example.com"))
        .await
        .expect("delivered");

    let stored = sim.messages();
    assert_eq!(stored.len(), 1);
    let m = &stored[0];
    assert_eq!(m.id, id, "caller gets the id Notify assigned");
    assert_eq!(m.channel, super::Channel::Email);
    assert_eq!(m.to, "ada@example.com");
    assert_eq!(m.template_id, TEMPLATE_ID);
    assert_eq!(m.personalisation["code"], "493817");
    assert_eq!(m.reference.as_deref(), Some("outbox-0001"));
}

#[tokio::test]
async fn delivers_sms() {
    let (addr, sim) = spawn_sim().await;
    let client = client_for(addr, SECRET);

    let id = client.send(&sms("07700 900123")).await.expect("delivered");

    let stored = sim.messages();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, id);
    assert_eq!(stored[0].channel, super::Channel::Sms);
    assert_eq!(stored[0].to, "07700 900123");
    assert_eq!(stored[0].personalisation["code"], "271828");
    assert_eq!(stored[0].reference.as_deref(), Some("outbox-0002"));
}

#[tokio::test]
async fn wrong_secret_is_permanent_403_without_personal_data() {
    let (addr, sim) = spawn_sim().await;
    let client = client_for(addr, "00000000-0000-4000-8000-000000000000");

    let err = client.send(&email("ada@example.com")).await.unwrap_err();

    let DeliveryError::Permanent(text) = &err else {
        panic!("expected Permanent, got {err:?}")
    };
    assert!(text.contains("403") && text.contains("AuthError"), "{text}");
    assert!(
        !text.contains("ada@example.com") && !text.contains("493817"),
        "{text}"
    );
    assert!(sim.messages().is_empty());
}

#[tokio::test]
async fn validation_error_is_permanent_and_names_only_the_code() {
    let (addr, sim) = spawn_sim().await;
    let client = client_for(addr, SECRET);
    let mut msg = email("ada@example.com");
    msg.template_id = "welcome-email".to_owned(); // Notify wants a UUID

    let err = client.send(&msg).await.unwrap_err();

    assert_eq!(
        err,
        DeliveryError::Permanent("govuk-notify: HTTP 400 (ValidationError)".to_owned())
    );
    assert!(sim.messages().is_empty());
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_transient() {
    let (addr, sim) = spawn_sim().await;
    let client = client_for(addr, SECRET);

    sim.set_mode(SimMode::Fail500);
    let err = client.send(&email("ada@example.com")).await.unwrap_err();
    assert_eq!(
        err,
        DeliveryError::Transient("govuk-notify: HTTP 500 (Exception)".to_owned())
    );

    sim.set_mode(SimMode::Fail429);
    let err = client.send(&sms("07700900123")).await.unwrap_err();
    assert_eq!(
        err,
        DeliveryError::Transient("govuk-notify: HTTP 429 (RateLimitError)".to_owned())
    );
    assert!(sim.messages().is_empty());

    sim.set_mode(SimMode::Ok);
    client
        .send(&email("ada@example.com"))
        .await
        .expect("recovers");
    assert_eq!(sim.messages().len(), 1);
}

#[tokio::test]
async fn timeout_and_refused_connection_are_transient() {
    let (addr, sim) = spawn_sim().await;
    sim.set_slow_delay(Duration::from_secs(5));
    sim.set_mode(SimMode::Slow);
    let client = client_for(addr, SECRET).with_timeout(Duration::from_millis(200));

    let err = client.send(&email("ada@example.com")).await.unwrap_err();
    assert!(
        matches!(&err, DeliveryError::Transient(t) if t.contains("timed out")),
        "{err:?}"
    );

    // A port that was free a moment ago: nothing is listening.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = client_for(free, SECRET)
        .send(&email("ada@example.com"))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn failure_mode_can_be_set_over_http() {
    let (addr, sim) = spawn_sim().await;
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");

    let r = http
        .post(format!("{base}/_sim/mode"))
        .json(&json!({ "mode": "fail_500" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sim.mode(), SimMode::Fail500);
    let err = client_for(addr, SECRET)
        .send(&email("a@example.com"))
        .await
        .unwrap_err();
    assert!(err.is_transient());

    http.post(format!("{base}/_sim/mode"))
        .json(&json!({ "mode": "ok" }))
        .send()
        .await
        .unwrap();
    let client = client_for(addr, SECRET);
    client.send(&email("first@example.com")).await.unwrap();
    client.send(&sms("07700900123")).await.unwrap();

    let listed: Vec<Value> = http
        .get(format!("{base}/_sim/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let to: Vec<&str> = listed.iter().map(|m| m["to"].as_str().unwrap()).collect();
    assert_eq!(to, ["first@example.com", "07700900123"], "newest last");
    assert_eq!(listed[1]["channel"], "sms");
}

/// What a capture server saw of one request.
#[derive(Default)]
struct Seen {
    path: String,
    authorization: String,
    body: Value,
}

/// Checks the request the way Notify would, with our own HMAC here rather
/// than the crate's, so a bug shared by client and simulator cannot hide.
#[tokio::test]
async fn request_carries_a_notify_jwt_and_notify_body() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    let app = axum::Router::new().fallback(
        move |uri: Uri, headers: HeaderMap, Json(body): Json<Value>| {
            let s = s.clone();
            async move {
                *s.lock().unwrap() = Seen {
                    path: uri.path().to_owned(),
                    authorization: headers["authorization"].to_str().unwrap().to_owned(),
                    body,
                };
                (StatusCode::CREATED, Json(json!({ "id": "captured-1" })))
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let id = client_for(addr, SECRET)
        .send(&sms("07700900123"))
        .await
        .unwrap();
    assert_eq!(id, "captured-1");

    let seen = seen.lock().unwrap();
    assert_eq!(seen.path, "/v2/notifications/sms");
    assert_eq!(
        seen.body,
        json!({
            "phone_number": "07700900123",
            "template_id": TEMPLATE_ID,
            "personalisation": { "code": "271828" },
            "reference": "outbox-0002",
        })
    );

    let token = seen
        .authorization
        .strip_prefix("Bearer ")
        .expect("bearer scheme");
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let decode =
        |p: &str| -> Value { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap() };
    assert_eq!(decode(parts[0]), json!({ "typ": "JWT", "alg": "HS256" }));
    let claims = decode(parts[1]);
    assert_eq!(claims["iss"], SERVICE_ID);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (claims["iat"].as_i64().unwrap() - now).abs() <= 5,
        "{claims}"
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    let signed = format!("{}.{}", parts[0], parts[1]);
    hmac::verify(
        &key,
        signed.as_bytes(),
        &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
    )
    .expect("signature made with the secret");
}
