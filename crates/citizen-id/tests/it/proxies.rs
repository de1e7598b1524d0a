//! The client's address behind the service's own proxies (issue 15 item 8), over HTTP. The test
//! server is reached from 127.0.0.1, which stands for the proxy next to it; each request carries
//! `X-Forwarded-For` as an appending proxy (nginx `$proxy_add_x_forwarded_for`, HAProxy
//! `option forwardfor`, a cloud load balancer) leaves it: what the client sent, then the
//! address the proxy saw.

use sqlx::Row as _;

use crate::support::flows::sign_in;
use crate::support::web::WebClient;
use crate::support::{Backend, TestApp, within_one_window};

/// The citizen's real address, as the proxy next to them saw it.
const REAL_CLIENT: &str = "198.51.100.7";
/// Another citizen, who signs in (their sign-in is audited).
const SIGNING_IN: &str = "198.51.100.20";
/// The outer of two proxies (a CDN in front of the load balancer), inside the trusted range.
const OUTER_PROXY: &str = "10.20.30.40";
/// Attempts a client may make per minute in these tests (`per_ip_per_minute`).
const LIMIT: i64 = 4;

fn one_proxy(s: &mut citizen_id::config::Settings) {
    s.trusted_proxies = citizen_id::web::client_ip::TrustedProxies::parse(&["127.0.0.0/8", "::1/128"]).unwrap();
    s.limits.per_ip_per_minute = LIMIT;
}

fn two_proxies(s: &mut citizen_id::config::Settings) {
    s.trusted_proxies = citizen_id::web::client_ip::TrustedProxies::parse(&["127.0.0.0/8", "10.0.0.0/8"]).unwrap();
    s.limits.per_ip_per_minute = LIMIT;
}

/// The proxy in front of the server trusts nothing: 127.0.0.1 is not one of its proxies.
fn no_trusted_proxy(s: &mut citizen_id::config::Settings) {
    s.trusted_proxies = citizen_id::web::client_ip::TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
    s.limits.per_ip_per_minute = LIMIT;
}

/// One wrong sign-in from a fresh browser whose request reaches the server with `forwarded`.
async fn wrong_sign_in(app: &TestApp, forwarded: &[&str], n: usize) -> u16 {
    let headers: Vec<(&str, &str)> = forwarded.iter().map(|v| ("x-forwarded-for", *v)).collect();
    let mut web = WebClient::with_headers(&app.base, &headers);
    web.get("/signin").await;
    let email = format!("nobody{n}@example.com");
    web.post("/signin", &[("email", &email), ("password", "whatever-it-is-1")]).await.status.as_u16()
}

/// The attack as found: each attempt names a new "client" at the left of the header, which an
/// appending proxy passes on. The limit must hold for the address the proxy saw; another
/// citizen behind the same proxy is not held up by it.
async fn rotating_the_spoofed_hop_does_not_reset_the_limit(app: &TestApp, forwarded: impl Fn(&str, &str) -> Vec<String>) {
    within_one_window(citizen_id::clock::MINUTE, 15 * citizen_id::clock::SECOND).await;
    let mut statuses = Vec::new();
    for i in 0..=LIMIT as usize {
        let spoofed = format!("203.0.113.{}", i + 1);
        let lines = forwarded(&spoofed, REAL_CLIENT);
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        statuses.push(wrong_sign_in(app, &lines, i).await);
    }
    assert!(statuses[..LIMIT as usize].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(statuses[LIMIT as usize], 429, "a new spoofed hop is still the same client: {statuses:?}");
    let neighbour = forwarded("203.0.113.1", "198.51.100.8");
    let neighbour: Vec<&str> = neighbour.iter().map(String::as_str).collect();
    assert_eq!(wrong_sign_in(app, &neighbour, 99).await, 401, "another client behind the same proxy has its own count");
}

/// The address the audit log holds for the account's latest successful sign-in.
async fn audited_ip(app: &TestApp, account_id: &str) -> String {
    let row = sqlx::query("SELECT ip FROM audit_log WHERE event = 'signin.succeeded' AND account_id = $1 ORDER BY seq DESC LIMIT 1")
        .bind(account_id)
        .fetch_one(app.state.db.pool())
        .await
        .expect("a sign-in was audited");
    row.try_get::<Option<String>, _>("ip").unwrap().unwrap_or_default()
}

async fn behind_one_proxy(app: TestApp) {
    // One header line, as a proxy appending to what the client sent writes it.
    rotating_the_spoofed_hop_does_not_reset_the_limit(&app, |spoofed, real| vec![format!("{spoofed}, {real}")]).await;
    // The audit log keeps the address the proxy saw, not the one the client chose.
    let citizen = app.citizen().await;
    let mut web = WebClient::with_headers(&app.base, &[("x-forwarded-for", &format!("6.6.6.6, {SIGNING_IN}"))]);
    sign_in(&app, &mut web, &citizen).await;
    assert_eq!(audited_ip(&app, &citizen.id).await, SIGNING_IN);
}

async fn behind_two_proxies(app: TestApp) {
    // The outer proxy appends the client's address, the inner one (the TCP peer) the outer's;
    // here as separate header lines, which count as one list in order.
    rotating_the_spoofed_hop_does_not_reset_the_limit(&app, |spoofed, real| vec![spoofed.to_string(), format!("{real}, {OUTER_PROXY}")]).await;
    let citizen = app.citizen().await;
    let mut web = WebClient::with_headers(&app.base, &[("x-forwarded-for", &format!("10.0.0.1, {SIGNING_IN}, {OUTER_PROXY}"))]);
    sign_in(&app, &mut web, &citizen).await;
    assert_eq!(audited_ip(&app, &citizen.id).await, SIGNING_IN, "a trusted-looking hop the client wrote is left of the client: never reached");
}

async fn from_an_untrusted_peer_the_header_is_ignored(app: TestApp) {
    let citizen = app.citizen().await;
    let mut web = WebClient::with_headers(&app.base, &[("x-forwarded-for", REAL_CLIENT)]);
    sign_in(&app, &mut web, &citizen).await;
    assert_eq!(audited_ip(&app, &citizen.id).await, "127.0.0.1");
    // Nor can a direct client escape its limit by sending the header.
    within_one_window(citizen_id::clock::MINUTE, 15 * citizen_id::clock::SECOND).await;
    let mut statuses = Vec::new();
    for i in 0..=LIMIT as usize {
        statuses.push(wrong_sign_in(&app, &[&format!("203.0.113.{}", i + 1)], i).await);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}

macro_rules! with_settings {
    ($($name:ident: $edit:path),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(TestApp::start_with_settings(Backend::Sqlite, &$edit).await.expect("sqlite")).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = TestApp::start_with_settings(Backend::Postgres, &$edit).await {
                    super::$name(app).await
                }
            }
        }
    )*};
}

with_settings! {
    behind_one_proxy: one_proxy,
    behind_two_proxies: two_proxies,
    from_an_untrusted_peer_the_header_is_ignored: no_trusted_proxy,
}
