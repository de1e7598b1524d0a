//! What a request may change: a GET sends nothing and signs nobody out; an anonymous visitor
//! costs no stored session; a failure after the partner is trusted goes back to the partner;
//! deletion and its confirmation happen together or not at all.

use crate::on_both_databases;
use crate::support::TestApp;
use crate::support::flows::sign_in;
use crate::support::protocol::{authorize_url, signed_in};
use crate::support::web::WebClient;

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(app.state.db.pool()).await.unwrap()
}

/// The finding: `GET /signin/code/resend` sent an SMS, so any page could make a visitor's
/// browser text them; now it is a POST with the CSRF token.
async fn sending_a_new_code_needs_a_post(app: TestApp) {
    let citizen = app.citizen().await;
    let mut web = WebClient::new(&app.base);
    web.get("/signin").await;
    web.post("/signin", &[("email", &citizen.email), ("password", &citizen.password)]).await;
    app.next_code(&citizen.mobile).await;
    let codes = "SELECT COUNT(*) FROM one_time_codes WHERE purpose = 'sign-in'";
    assert_eq!(count(&app, codes).await, 1);
    let page = web.get("/signin/code/resend").await;
    assert_eq!(page.status, 405);
    assert_eq!(count(&app, codes).await, 1, "a GET sends nothing");
    let page = web.post_raw("/signin/code/resend", "application/x-www-form-urlencoded", b"csrf_token=forged".to_vec()).await;
    assert_eq!(page.status, 403);
    web.get("/signin/code").await;
    let page = web.post("/signin/code/resend", &[]).await;
    assert_eq!(page.heading(), "Enter the security code");
    assert_eq!(count(&app, codes).await, 2);
}

/// The finding: a link to `/authorize?prompt=login` from any site ended the citizen's session.
/// Now the old sign-in is replaced only when the new one completes.
async fn prompt_login_replaces_the_sign_in_only_when_the_new_one_completes(app: TestApp) {
    let p = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    let mut web = signed_in(&app, &p, &citizen).await;
    let page = web.get(&authorize_url(&app, &p, &[("prompt", "login")])).await;
    assert_eq!(page.heading(), "Sign in", "prompt=login asks for a sign-in");
    assert!(web.get("/settings").await.contains(&citizen.email), "and the citizen is still signed in meanwhile");
    let page = web.get(&authorize_url(&app, &p, &[("prompt", "login")])).await;
    assert_eq!(page.heading(), "Sign in");
    let page = web.post("/signin", &[("email", &citizen.email), ("password", &citizen.password)]).await;
    assert_eq!(page.heading(), "Enter the security code");
    let code = app.next_code(&citizen.mobile).await;
    let page = web.post("/signin/code", &[("code", &code)]).await;
    assert!(page.param("code").is_some(), "the new sign-in completes the request: {:?}", page.left_to);
}

/// The finding: 59,000 session rows from 20 s of anonymous GETs. Reading pages stores nothing;
/// a form still works, as its CSRF token comes from the cookie's id.
async fn anonymous_pages_store_no_session(app: TestApp) {
    let sessions = "SELECT COUNT(*) FROM sessions";
    let before = count(&app, sessions).await;
    for _ in 0..5 {
        let mut web = WebClient::new(&app.base);
        for path in ["/", "/signin", "/register", "/forgot-password", "/prove-identity", "/no-such-page"] {
            web.get(path).await;
        }
    }
    assert_eq!(count(&app, sessions).await, before, "no rows for anonymous GETs");
    // A partner's request is something to keep; what it may store is bounded.
    let p = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let mut web = WebClient::new(&app.base);
    let long = "s".repeat(60_000);
    let page = web.get(&authorize_url(&app, &p, &[("state", &long)])).await;
    assert_eq!(page.param("error").as_deref(), Some("invalid_request"));
    assert_eq!(count(&app, sessions).await, before);
    let page = web.get(&authorize_url(&app, &p, &[])).await;
    assert_eq!(page.heading(), "Sign in");
    assert_eq!(count(&app, sessions).await, before + 1);
    // The form on a page from a rowless session is accepted.
    let citizen = app.citizen().await;
    let mut fresh = WebClient::new(&app.base);
    let page = sign_in(&app, &mut fresh, &citizen).await;
    assert_ne!(page.status, 403, "{}", page.heading());
}

/// Breaks the consents table, which every authorization reads after the partner is trusted.
async fn break_consents(app: &TestApp) {
    sqlx::query("ALTER TABLE consents RENAME TO consents_unavailable").execute(app.state.db.pool()).await.unwrap();
}

/// The finding: with `prompt=none` a database failure showed a page, which such a request must
/// never do (spec Table 1). Now the partner hears `temporarily_unavailable`; with a page allowed
/// the citizen can go back to the partner, which hears the same.
async fn failures_after_the_partner_is_trusted_go_back_to_it(app: TestApp) {
    let p = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    let mut web = signed_in(&app, &p, &citizen).await;
    break_consents(&app).await;
    let page = web.get(&authorize_url(&app, &p, &[("prompt", "none")])).await;
    assert_eq!(page.param("error").as_deref(), Some("temporarily_unavailable"), "{:?} {} {}", page.left_to, page.heading(), page.status);
    assert_eq!(page.param("state").as_deref(), Some("state-123"));
    let page = web.get(&authorize_url(&app, &p, &[])).await;
    assert_eq!((page.status.as_u16(), page.heading().as_str()), (503, "Sorry, the service is unavailable"));
    let back = page.html.split("href=\"").filter_map(|s| s.split('"').next()).find(|h| h.starts_with("/authorize/cancel")).expect("a way back");
    assert!(page.contains("Go back to Test partner"));
    let page = web.get(&back.replace("&amp;", "&").replace("&#38;", "&")).await;
    assert_eq!(page.param("error").as_deref(), Some("temporarily_unavailable"), "{:?}", page.left_to);
    assert!(page.left_to.unwrap().starts_with(&p.redirect_uri));
    // A forged way back goes nowhere but home.
    let forged = format!("/authorize/cancel?r={}&s=eA&sig=00", citizen_id::crypto::b64url(b"https://evil.example/cb"));
    let page = web.get(&forged).await;
    assert!(page.left_to.is_none(), "{:?}", page.left_to);
}

/// The finding: the "account deleted" email was queued in one transaction and the account
/// deleted in another, so the email could go out while the account stayed.
async fn deletion_and_its_email_happen_together(app: TestApp) {
    let citizen = app.citizen().await;
    let mut web = WebClient::new(&app.base);
    sign_in(&app, &mut web, &citizen).await;
    web.get("/settings/delete").await;
    break_consents(&app).await;
    let page = web.post("/settings/delete", &[("password", &citizen.password)]).await;
    assert_eq!(page.status, 503);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM outbox WHERE template = 'account-deleted'").await, 0, "no email for an account that stays");
    assert!(app.state.db.account(&citizen.id).await.unwrap().is_some());
}

on_both_databases!(
    sending_a_new_code_needs_a_post,
    prompt_login_replaces_the_sign_in_only_when_the_new_one_completes,
    anonymous_pages_store_no_session,
    failures_after_the_partner_is_trusted_go_back_to_it,
    deletion_and_its_email_happen_together,
);
