#![allow(dead_code)] // test support: not every helper is used by every test
//! `TestApp`: a running server on a fresh database (SQLite, or PostgreSQL), its notification
//! sink, and helpers to make partners and citizens in one line.

pub mod browser;
pub mod flows;
pub mod protocol;
pub mod rp;
pub mod web;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use citizen_id::cli::sandpit;
use citizen_id::config::Settings;
use citizen_id::crypto::password;
use citizen_id::integrations::notify::dev_sink::DevSink;
use citizen_id::oidc::keys::generate_rsa_pkcs8;
use citizen_id::partners::{PartnerInput, build};
use citizen_id::integrations::{gp, pds};
use citizen_id::state::{AppState, Integrations};
use citizen_id::store::accounts::NewAccount;
use citizen_id::web::demo::DemoPartner;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    /// The PDS and GP simulators this server talks to over HTTP.
    pub pds_sim: citizen_id::integrations::pds::simulator::SimHandle,
    pub gp_sim: citizen_id::integrations::gp::simulator::SimHandle,
    pub addr: SocketAddr,
    /// The `/metrics` listener, when the settings give it its own (`metrics_listen`).
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    pub sink: Arc<DevSink>,
    seen: Mutex<HashMap<String, u64>>,
    _dir: tempfile::TempDir,
}

/// A registered partner and the key it signs client assertions with.
pub struct TestPartner {
    pub client_id: String,
    pub redirect_uri: String,
    pub signer: DemoPartner,
}

/// A citizen with a known password and mobile.
pub struct Citizen {
    pub id: String,
    pub email: String,
    pub password: String,
    pub mobile: String,
}

pub const PASSWORD: &str = "plum-harbour-violet-42";

fn admin_url() -> String {
    std::env::var("CITIZEN_ID_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh PostgreSQL database, or `None` (with a loud skip) when none is reachable outside CI.
async fn postgres_database() -> Option<String> {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let admin = admin_url();
    let conn = tokio::time::timeout(Duration::from_secs(3), sqlx::AnyConnection::connect(&admin)).await;
    let mut conn = match conn {
        Ok(Ok(c)) => c,
        other => {
            let why = match other {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".into(),
            };
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("PostgreSQL is required in CI but unreachable at {admin}: {why}");
            }
            eprintln!("skipped: PostgreSQL not reachable at {admin} ({why}); set CITIZEN_ID_TEST_POSTGRES");
            return None;
        }
    };
    let name = format!("cid_test_{}", citizen_id::crypto::random_token(8).to_lowercase().replace(['-', '_'], "x"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.expect("create test database");
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin);
    Some(format!("{base}/{name}"))
}

impl TestApp {
    pub async fn start(backend: Backend) -> Option<TestApp> {
        TestApp::start_with(backend, true).await
    }

    /// A server with no delivery worker: the test delivers the outbox itself.
    pub async fn start_without_delivery(backend: Backend) -> Option<TestApp> {
        TestApp::start_with(backend, false).await
    }

    async fn start_with(backend: Backend, deliver: bool) -> Option<TestApp> {
        TestApp::start_at(backend, "127.0.0.1", deliver, None, &|_| {}).await
    }

    /// Like `start`, with `edit` applied to the settings first (e.g. `serve`'s `mode` and
    /// `metrics_listen`, or `trusted_proxies`).
    pub async fn start_with_settings(backend: Backend, edit: &(dyn Fn(&mut Settings) + Sync)) -> Option<TestApp> {
        TestApp::start_at(backend, "127.0.0.1", true, None, edit).await
    }

    /// Like `start`, but the issuer is `http://localhost:{port}` (still listening on
    /// 127.0.0.1): WebAuthn needs a secure context and a relying-party id that is a domain
    /// name, which 127.0.0.1 is not. For the passkey tests.
    pub async fn start_localhost(backend: Backend) -> Option<TestApp> {
        TestApp::start_at(backend, "localhost", true, None, &|_| {}).await
    }

    /// Like `start_localhost`, with `edit` applied to the settings first.
    pub async fn start_localhost_with(backend: Backend, edit: &(dyn Fn(&mut Settings) + Sync)) -> Option<TestApp> {
        TestApp::start_at(backend, "localhost", true, None, edit).await
    }

    /// Like `start`, but the issuer is an https URL, as behind the TLS-terminating proxy of a
    /// production deployment (requests still reach it over plain HTTP on 127.0.0.1): for what
    /// changes outside localhost (`Secure` `__Host-` cookies, HSTS).
    pub async fn start_behind_tls_proxy(backend: Backend) -> Option<TestApp> {
        TestApp::start_at(backend, "127.0.0.1", true, Some("https://citizen-id.example"), &|_| {}).await
    }

    async fn start_at(backend: Backend, host: &str, deliver: bool, issuer: Option<&str>, edit: &(dyn Fn(&mut Settings) + Sync)) -> Option<TestApp> {
        citizen_id::ops::telemetry::init_logging(false);
        let dir = tempfile::tempdir().expect("tempdir");
        let database_url = match backend {
            Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
            Backend::Postgres => postgres_database().await?,
        };
        Some(TestApp::with_database(database_url, dir, host, deliver, issuer, edit).await)
    }

    async fn with_database(
        database_url: String,
        dir: tempfile::TempDir,
        host: &str,
        deliver: bool,
        issuer: Option<&str>,
        edit: &(dyn Fn(&mut Settings) + Sync),
    ) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://{host}:{}", addr.port());
        let mut settings = sandpit::settings(base.clone(), addr, database_url, "test-secret-0123456789-0123456789".into());
        // Tests read real codes from the sink: the fixed sandpit code must not mask mistakes.
        settings.test_code = None;
        if let Some(issuer) = issuer {
            settings.issuer = issuer.into();
        }
        // Key rotations by the CLI reach the server within a test's patience.
        settings.key_refresh = Duration::from_millis(100);
        edit(&mut settings);
        let (der, jwk) = test_key();
        let demo = DemoPartner::from_pkcs8(sandpit::DEMO_CLIENT_ID, &der).expect("demo key");
        let sink = Arc::new(DevSink::new());
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let (pds_addr, pds_sim) = pds::simulator::spawn(any, pds::dataset::documented_patients()).await.expect("PDS simulator");
        let (gp_addr, gp_sim) = gp::simulator::spawn(any, gp::documented_credentials()).await.expect("GP simulator");
        let (pds, gp) = citizen_id::server::third_parties(Some(&format!("http://{pds_addr}")), Some(&format!("http://{gp_addr}"))).expect("clients");
        let integrations = Integrations { dev_sink: Some(sink.clone()), demo: Some(demo), pds, gp };
        let state = AppState::build(settings, integrations).await.expect("state");
        sandpit::ensure_demo_partner(&state, &der, &jwk).await.expect("demo partner");
        let running = citizen_id::server::start(state.clone(), listener, sink.clone(), deliver.then_some(Duration::from_millis(20))).await.expect("start");
        TestApp {
            base,
            pds_sim,
            gp_sim,
            addr: running.addr,
            metrics_addr: running.metrics_addr,
            state,
            sink,
            seen: Mutex::new(HashMap::new()),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Registers a partner permitted `scopes` and `vectors`, with its own RSA key.
    pub async fn partner(&self, scopes: &str, vectors: &[&str]) -> TestPartner {
        self.partner_redirecting_to(scopes, vectors, "https://rp.example/callback").await
    }

    /// A partner whose redirect URI is `redirect_uri` (e.g. a page of this server, so a browser
    /// test can read the code from the address bar).
    pub async fn partner_redirecting_to(&self, scopes: &str, vectors: &[&str], redirect_uri: &str) -> TestPartner {
        let (der, jwk) = test_key();
        let client_id = format!("rp-{}", citizen_id::crypto::random_token(6));
        let mut jwk = jwk;
        jwk["kid"] = "demo-1".into();
        let record = build(PartnerInput {
            client_id: Some(client_id.clone()),
            name: "Test partner".into(),
            redirect_uris: vec![redirect_uri.into()],
            public_keys: vec![jwk.to_string()],
            scopes: scopes.into(),
            vectors: vectors.iter().map(|v| v.to_string()).collect(),
            refresh_tokens: true,
            im1: false,
            sso_from: vec![],
        })
        .expect("valid partner");
        self.state.db.insert_partner(&record).await.expect("insert partner");
        TestPartner { client_id: client_id.clone(), redirect_uri: redirect_uri.into(), signer: DemoPartner::from_pkcs8(&client_id, &der).unwrap() }
    }

    /// SSO pairing: `to` accepts `from`'s asserted_login_identity (`partner update --sso-from`).
    pub async fn allow_sso(&self, to: &TestPartner, from: &TestPartner) {
        let mut record = self.state.db.partner(&to.client_id).await.unwrap().expect("partner");
        record.sso_from.push(from.client_id.clone());
        assert!(self.state.db.update_partner(&record).await.unwrap());
    }

    /// An account at P0 with a verified email and mobile, written straight to the store.
    pub async fn citizen(&self) -> Citizen {
        let n = citizen_id::crypto::random_digits(6);
        self.citizen_with_mobile(&format!("+4477008{n}")).await
    }

    /// An account at P0 whose verified mobile is `mobile` (E.164).
    pub async fn citizen_with_mobile(&self, mobile: &str) -> Citizen {
        let n = citizen_id::crypto::random_token(9).to_lowercase();
        let email = format!("citizen.{n}@example.com");
        let mobile = mobile.to_string();
        let id = citizen_id::crypto::random_token(24);
        let hash = password::hash(PASSWORD.into()).await.expect("hash");
        let new = NewAccount { id: id.clone(), email: email.clone(), password_hash: Some(hash), mobile: mobile.clone(), created_at: citizen_id::clock::now_ms() };
        self.state.db.insert_account(&new).await.expect("insert account");
        Citizen { id, email, password: PASSWORD.into(), mobile }
    }

    /// The next one-time code sent to `to` (waits for the delivery worker).
    pub async fn next_code(&self, to: &str) -> String {
        for _ in 0..250 {
            if let Some(m) = self.sink.latest_for(to) {
                let mut seen = self.seen.lock().unwrap();
                let last = seen.get(to).copied().unwrap_or(0);
                if m.at_unix_ms > last
                    && let Some(code) = m.personalisation.get("code").and_then(|c| c.as_str())
                {
                    seen.insert(to.to_string(), m.at_unix_ms);
                    return code.to_string();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no code was sent to {to}");
    }

    /// Waits for the delivery worker to send `template` to `to`.
    pub async fn wait_for_template(&self, to: &str, template: &str) {
        for _ in 0..250 {
            if self.templates_sent_to(to).iter().any(|t| t == template) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{template} was not sent to {to}");
    }

    /// Every message sent to `to`, by template.
    pub fn templates_sent_to(&self, to: &str) -> Vec<String> {
        self.sink.messages().into_iter().filter(|m| m.to == to).map(|m| m.template_id).collect()
    }
}

/// RSA keys are slow to generate in debug builds: share a few across tests.
fn test_key() -> (Vec<u8>, serde_json::Value) {
    use std::sync::OnceLock;
    static KEYS: OnceLock<Vec<(Vec<u8>, serde_json::Value)>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| (0..3).map(|_| generate_rsa_pkcs8().expect("key")).collect());
    // Round robin, so two partners made one after the other never share a key.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    keys[NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % keys.len()].clone()
}

/// Rate limits count in windows aligned to the clock: fixed ones for daily quotas, and for the
/// per-minute and per-quarter-hour limits a sliding count in which the previous window's hits
/// fade as the current one goes on (`accounts::limits`). A test that expects its hits counted
/// exactly waits for the next window to start when fewer than `needed_ms` remain of the
/// current one, instead of failing when it happens to straddle the edge.
pub async fn within_one_window(window_ms: i64, needed_ms: i64) {
    let left = window_ms - citizen_id::clock::now_ms() % window_ms;
    if left < needed_ms {
        tokio::time::sleep(Duration::from_millis(left as u64 + 50)).await;
    }
}

/// Runs the test body against SQLite and against PostgreSQL: `on_both_databases!(name)`
/// expects `async fn name(app: TestApp)` in scope and makes `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::support::{Backend, TestApp};
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(TestApp::start(Backend::Sqlite).await.expect("sqlite")).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = TestApp::start(Backend::Postgres).await {
                    super::$name(app).await
                }
            }
        }
    )*};
}
