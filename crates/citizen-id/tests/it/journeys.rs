//! Citizen journeys (F3, F4): lockout, code expiry, declined consent, allow_registration,
//! forgotten password.

use crate::on_both_databases;
use crate::support::TestApp;
use crate::support::flows::sign_in;
use crate::support::protocol::authorize_url;
use crate::support::web::WebClient;

async fn wrong_codes_lock_the_account_and_codes_expire(app: TestApp) {
    let citizen = app.citizen().await;
    let mut web = WebClient::new(&app.base);
    web.get("/signin").await;
    let page = web.post("/signin", &[("email", &citizen.email), ("password", &citizen.password)]).await;
    assert_eq!(page.heading(), "Enter the security code");
    let real = app.next_code(&citizen.mobile).await;
    let wrong = if real == "000000" { "111111" } else { "000000" };
    let page = web.post("/signin/code", &[("code", wrong)]).await;
    assert!(page.contains("You have 4 more tries"), "{}", page.html);

    // Expiry: the same real code no longer works once its 10 minutes have passed.
    sqlx::query("UPDATE one_time_codes SET expires_at = 1").execute(app.state.db.pool()).await.unwrap();
    let page = web.post("/signin/code", &[("code", &real)]).await;
    assert!(page.contains("The security code has expired"));

    web.post("/signin/code/resend", &[]).await;
    app.next_code(&citizen.mobile).await;
    for _ in 0..4 {
        web.post("/signin/code", &[("code", wrong)]).await;
    }
    let page = web.post("/signin/code", &[("code", wrong)]).await;
    assert_eq!(page.heading(), "Your account is locked");
}

/// One-time codes (issue item 6): stored as keyed hashes, never as the code; valid for 10
/// minutes; single use; and at most 5 sent per account per hour, the sixth refused.
async fn codes_are_hashed_single_use_and_capped_per_hour(app: TestApp) {
    let citizen = app.citizen().await;
    let mut web = WebClient::new(&app.base);
    web.get("/signin").await;
    web.post("/signin", &[("email", &citizen.email), ("password", &citizen.password)]).await;
    let first = app.next_code(&citizen.mobile).await;
    let (hash, created, expires): (String, i64, i64) =
        sqlx::query_as("SELECT code_hash, created_at, expires_at FROM one_time_codes WHERE subject = $1 AND purpose = 'sign-in'")
            .bind(&citizen.id)
            .fetch_one(app.state.db.pool())
            .await
            .unwrap();
    assert!(!hash.contains(&first) && hash.len() >= 43, "stored as a keyed hash, not the code: {hash}");
    assert_eq!(expires - created, 10 * 60 * 1000, "valid for 10 minutes");
    let page = web.post("/signin/code", &[("code", &first)]).await;
    assert_ne!(page.heading(), "Enter the security code", "the right code signs in");

    // Another browser signs in: the used code is worth nothing there.
    let mut other = WebClient::new(&app.base);
    other.get("/signin").await;
    other.post("/signin", &[("email", &citizen.email), ("password", &citizen.password)]).await;
    let second = app.next_code(&citizen.mobile).await;
    if second != first {
        let page = other.post("/signin/code", &[("code", &first)]).await;
        assert!(page.heading() == "Enter the security code" && page.contains("You have 4 more tries"), "a used code is refused");
    }
    // Two codes sent this hour; three more may be, then no more.
    for _ in 0..3 {
        let page = other.post("/signin/code/resend", &[]).await;
        assert_eq!(page.heading(), "Enter the security code");
        app.next_code(&citizen.mobile).await;
    }
    let page = other.post("/signin/code/resend", &[]).await;
    assert_eq!((page.status.as_u16(), page.heading().as_str()), (429, "Too many attempts"));
    let sent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM one_time_codes WHERE subject = $1 AND purpose = 'sign-in'")
        .bind(&citizen.id)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(sent, 5);
}

/// Single sign-on within the session limits (30 minutes idle, 12 hours in all): past either, a
/// partner's `prompt=none` gets `sso_login_required` and a plain request the sign-in page; and
/// signing out ends the session, so its cookie no longer signs anyone in.
async fn single_sign_on_ends_at_the_session_limits_and_at_sign_out(app: TestApp) {
    let p = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    let silent = authorize_url(&app, &p, &[("prompt", "none")]);
    for limit in ["idle_expires_at", "expires_at"] {
        let mut web = crate::support::protocol::signed_in(&app, &p, &citizen).await;
        let page = web.get(&silent).await;
        assert!(page.param("code").is_some(), "{limit}: a live session signs in silently");
        let (created, idle, absolute): (i64, i64, i64) =
            sqlx::query_as("SELECT created_at, idle_expires_at, expires_at FROM sessions WHERE account_id = $1 ORDER BY created_at DESC")
                .bind(&citizen.id)
                .fetch_one(app.state.db.pool())
                .await
                .unwrap();
        assert!(idle - citizen_id::clock::now_ms() <= 30 * 60 * 1000 && absolute - created == 12 * 3600 * 1000, "the reference's limits");
        // The limit passes (the idle one first, then, with a fresh session, the absolute one).
        sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE sessions SET {limit} = 1 WHERE account_id = $1")))
            .bind(&citizen.id)
            .execute(app.state.db.pool())
            .await
            .unwrap();
        let page = web.get(&silent).await;
        assert_eq!(page.param("error").as_deref(), Some("sso_login_required"), "{limit}");
        assert_eq!(web.get(&authorize_url(&app, &p, &[])).await.heading(), "Sign in", "{limit}");
    }

    let mut web = crate::support::protocol::signed_in(&app, &p, &citizen).await;
    let cookie = web.cookie("cid_session").unwrap();
    assert_eq!(web.post("/sign-out", &[]).await.heading(), "You have signed out");
    let page = web.get(&silent).await;
    assert_eq!(page.param("error").as_deref(), Some("sso_login_required"), "signed out");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let res = http.get(app.url("/settings")).header("cookie", format!("cid_session={cookie}")).send().await.unwrap();
    assert_eq!(res.status(), 303, "the signed-out session's cookie signs nobody in");
}

async fn declined_consent_returns_access_denied(app: TestApp) {
    let p = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    let mut web = WebClient::new(&app.base);
    web.get(&authorize_url(&app, &p, &[])).await;
    let page = sign_in(&app, &mut web, &citizen).await;
    assert_eq!(page.heading(), "Share your details with Test partner");
    let page = web.post("/consent", &[("decision", "decline")]).await;
    assert_eq!(page.param("error").as_deref(), Some("access_denied"));
    assert_eq!(page.param("error_description").as_deref(), Some("ConsentNotGiven"));
    assert_eq!(page.param("state").as_deref(), Some("state-123"));
}

async fn allow_registration_false_hides_registration(app: TestApp) {
    let p = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let mut web = WebClient::new(&app.base);
    let page = web.get(&authorize_url(&app, &p, &[("allow_registration", "false")])).await;
    assert_eq!(page.heading(), "Sign in");
    assert!(!page.contains("Create an account"));
    let page = web.get("/register").await;
    assert_eq!(page.heading(), "Sign in", "the registration pages send the citizen back to sign in");
    let page = web.get(&authorize_url(&app, &p, &[])).await;
    assert!(page.contains("Create an account"));
}

async fn forgotten_password_resets_with_email_and_sms_codes(app: TestApp) {
    let citizen = app.citizen().await;
    let mut web = WebClient::new(&app.base);
    web.get("/forgot-password").await;
    let page = web.post("/forgot-password", &[("email", &citizen.email)]).await;
    assert_eq!(page.heading(), "Enter the security code");
    let code = app.next_code(&citizen.email).await;
    web.post("/forgot-password/code", &[("code", &code)]).await;
    let code = app.next_code(&citizen.mobile).await;
    let page = web.post("/forgot-password/sms-code", &[("code", &code)]).await;
    assert_eq!(page.heading(), "Create a new password");
    let page = web.post("/forgot-password/new-password", &[("password", "password"), ("confirm", "password")]).await;
    assert!(page.contains("harder to guess") || page.contains("at least"), "weak passwords are refused");
    let new = "copper-lantern-meadow-77";
    let page = web.post("/forgot-password/new-password", &[("password", new), ("confirm", new)]).await;
    assert_eq!(page.heading(), "Your password has been changed");
    app.wait_for_template(&citizen.email, "password-changed").await;

    let mut web = WebClient::new(&app.base);
    web.get("/signin").await;
    let page = web.post("/signin", &[("email", &citizen.email), ("password", &citizen.password)]).await;
    assert_eq!(page.status, 401, "the old password no longer works");
    let page = web.post("/signin", &[("email", &citizen.email), ("password", new)]).await;
    assert_eq!(page.heading(), "Enter the security code");
}

async fn remembered_browser_skips_the_sms_code(app: TestApp) {
    let citizen = app.citizen().await;
    let mut web = WebClient::new(&app.base);
    web.get("/signin").await;
    web.post("/signin", &[("email", &citizen.email), ("password", &citizen.password)]).await;
    let code = app.next_code(&citizen.mobile).await;
    let page = web.post("/signin/code", &[("code", &code), ("remember", "yes")]).await;
    assert_eq!(page.heading(), "Citizen ID");
    web.get("/signin").await;
    let page = web.post("/sign-out", &[]).await;
    assert_eq!(page.heading(), "You have signed out");
    web.get("/signin").await;
    let page = web.post("/signin", &[("email", &citizen.email), ("password", &citizen.password)]).await;
    assert_eq!(page.heading(), "Citizen ID", "signed in with Cp and the remembered browser as Cd");
}

on_both_databases!(
    single_sign_on_ends_at_the_session_limits_and_at_sign_out,
    codes_are_hashed_single_use_and_capped_per_hour,
    wrong_codes_lock_the_account_and_codes_expire,
    declined_consent_returns_access_denied,
    allow_registration_false_hides_registration,
    forgotten_password_resets_with_email_and_sms_codes,
    remembered_browser_skips_the_sms_code,
);
