//! Notifications (F12): the outbox keeps a message while every provider is down, and the
//! worker delivers it through the real Notify client once a provider is back, after its backoff;
//! a permanent refusal is given up at once.

use std::sync::Arc;

use citizen_id::integrations::notify::NotificationProvider;
use citizen_id::integrations::notify::failover::FailoverProvider;
use citizen_id::integrations::notify::notify_client::NotifyClient;
use citizen_id::integrations::notify::simulator::{NotifySimulator, SimMode};
use citizen_id::ops::delivery::deliver_due;
use sqlx::Row as _;

use crate::support::{Backend, TestApp};
use crate::support::web::WebClient;

const SERVICE: &str = "26785a09-ab16-4eb0-8407-a37497a57506";
const SECRET: &str = "3d844edf-8d35-48ac-975b-e847b4f122b0";

async fn nothing_is_lost_while_notify_is_down(backend: Backend) {
    let Some(app) = TestApp::start_without_delivery(backend).await else { return };
    let any = "127.0.0.1:0".parse().unwrap();
    let (primary_addr, primary) = NotifySimulator::spawn(any, SERVICE, SECRET).await.unwrap();
    let (backup_addr, backup) = NotifySimulator::spawn(any, SERVICE, SECRET).await.unwrap();
    let key = format!("citizen_id-{SERVICE}-{SECRET}");
    // Each Notify service has its own template ids.
    let templates: std::collections::HashMap<String, String> =
        [("email-verification-code".to_string(), "f33517ff-2a88-4f6e-b855-c550268ce08a".to_string())].into();
    let client = |addr: std::net::SocketAddr| {
        Arc::new(NotifyClient::new(reqwest::Client::new(), &format!("http://{addr}"), &key).unwrap().with_templates(templates.clone()))
            as Arc<dyn NotificationProvider>
    };
    let provider = FailoverProvider::new(vec![client(primary_addr), client(backup_addr)]);
    primary.set_mode(SimMode::Fail500);
    backup.set_mode(SimMode::Fail500);

    // A registration queues an email code in the same transaction as the code itself.
    let mut web = WebClient::new(&app.base);
    web.get("/register").await;
    let page = web.post("/register", &[("email", "outbox.test@example.com")]).await;
    assert_eq!(page.heading(), "Check your email");
    let failed_at = citizen_id::clock::now_ms();
    assert_eq!(deliver_due(&app.state, &provider).await.unwrap(), 0);
    let pending: i64 = sqlx::query("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL").fetch_one(app.state.db.pool()).await.unwrap().get(0);
    assert_eq!(pending, 1, "the message waits in the outbox while both providers fail");
    let attempts: i64 = sqlx::query("SELECT attempts FROM outbox").fetch_one(app.state.db.pool()).await.unwrap().get(0);
    assert_eq!(attempts, 1);
    // The retry waits out its backoff (5 s after a first failure): a pass now leaves it alone.
    let next: i64 = sqlx::query("SELECT next_attempt_at FROM outbox").fetch_one(app.state.db.pool()).await.unwrap().get(0);
    assert!(next >= failed_at + 5_000, "backoff: next attempt {} ms after the failure", next - failed_at);
    assert_eq!(deliver_due(&app.state, &provider).await.unwrap(), 0);
    let attempts: i64 = sqlx::query("SELECT attempts FROM outbox").fetch_one(app.state.db.pool()).await.unwrap().get(0);
    assert_eq!(attempts, 1, "not retried before it is due");
    // The backup recovers; the retry is due (skip the backoff wait).
    backup.set_mode(SimMode::Ok);
    sqlx::query("UPDATE outbox SET next_attempt_at = 0").execute(app.state.db.pool()).await.unwrap();
    let delivered = deliver_due(&app.state, &provider).await.unwrap();
    let last: Option<String> = sqlx::query("SELECT last_error FROM outbox").fetch_one(app.state.db.pool()).await.unwrap().get(0);
    assert_eq!(delivered, 1, "last error: {last:?}");
    let sent = backup.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "outbox.test@example.com");
    assert_eq!(sent[0].template_id, "f33517ff-2a88-4f6e-b855-c550268ce08a");
    assert!(primary.messages().is_empty());
    let sealed: Option<String> = sqlx::query("SELECT sealed_message FROM outbox").fetch_one(app.state.db.pool()).await.unwrap().get(0);
    assert!(sealed.is_none(), "the content is erased once delivered");
}

/// A provider that refuses the message for good (a revoked API key: 403) is not retried: the
/// message is marked failed, its content erased, and the failure counted.
async fn a_permanent_refusal_is_not_retried(backend: Backend) {
    let Some(app) = TestApp::start_without_delivery(backend).await else { return };
    let (addr, sim) = NotifySimulator::spawn("127.0.0.1:0".parse().unwrap(), SERVICE, SECRET).await.unwrap();
    let wrong_key = format!("citizen_id-{SERVICE}-00000000-0000-4000-8000-000000000000");
    let provider = NotifyClient::new(reqwest::Client::new(), &format!("http://{addr}"), &wrong_key).unwrap();
    let mut web = WebClient::new(&app.base);
    web.get("/register").await;
    web.post("/register", &[("email", "refused.for.good@example.com")]).await;
    assert_eq!(deliver_due(&app.state, &provider).await.unwrap(), 0);
    let row = sqlx::query("SELECT attempts, failed_at, sealed_message, last_error FROM outbox").fetch_one(app.state.db.pool()).await.unwrap();
    let (attempts, failed_at, sealed, error): (i64, Option<i64>, Option<String>, Option<String>) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(attempts, 1);
    assert!(failed_at.is_some(), "given up at once: {error:?}");
    assert!(sealed.is_none(), "the content is erased");
    sqlx::query("UPDATE outbox SET next_attempt_at = 0").execute(app.state.db.pool()).await.unwrap();
    assert_eq!(deliver_due(&app.state, &provider).await.unwrap(), 0);
    let attempts: i64 = sqlx::query("SELECT attempts FROM outbox").fetch_one(app.state.db.pool()).await.unwrap().get(0);
    assert_eq!(attempts, 1, "never tried again");
    assert!(sim.messages().is_empty());
}

mod a_permanent_refusal_is_not_retried {
    use crate::support::Backend;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::a_permanent_refusal_is_not_retried(Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::a_permanent_refusal_is_not_retried(Backend::Postgres).await
    }
}

mod nothing_is_lost_while_notify_is_down {
    use crate::support::Backend;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::nothing_is_lost_while_notify_is_down(Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::nothing_is_lost_while_notify_is_down(Backend::Postgres).await
    }
}
