//! Rate limits, no account enumeration, bad input and a database outage: each gets a clear
//! answer of the right kind, never a panic or a half-written record.

use crate::on_both_databases;
use crate::support::web::WebClient;
use crate::support::{TestApp, within_one_window};

async fn sign_in_attempts_are_rate_limited_per_ip(app: TestApp) {
    let mut web = WebClient::new(&app.base);
    web.get("/signin").await;
    // The attempts take a second or two; all of them must count in one minute's window.
    within_one_window(citizen_id::clock::MINUTE, 15 * citizen_id::clock::SECOND).await;
    let limit = app.state.settings.limits.per_ip_per_minute;
    let mut statuses = Vec::new();
    for i in 0..=limit {
        let email = format!("nobody{i}@example.com");
        statuses.push(web.post("/signin", &[("email", &email), ("password", "whatever-it-is-1")]).await.status.as_u16());
    }
    assert!(statuses[..limit as usize].iter().all(|s| *s == 401), "{statuses:?}");
    let page = web.post("/signin", &[("email", "late@example.com"), ("password", "whatever-it-is-1")]).await;
    assert_eq!(page.status, 429);
    assert_eq!(page.heading(), "Too many attempts");
}

async fn answers_do_not_reveal_which_emails_have_accounts(app: TestApp) {
    let citizen = app.citizen().await;
    let mut web = WebClient::new(&app.base);
    // Sign in: a wrong password and an unknown email look the same.
    web.get("/signin").await;
    let known = web.post("/signin", &[("email", &citizen.email), ("password", "not-the-password-9")]).await;
    let unknown = web.post("/signin", &[("email", "stranger@example.com"), ("password", "not-the-password-9")]).await;
    assert_eq!((known.status, known.heading()), (unknown.status, unknown.heading()));
    assert!(known.contains("Enter a correct email address and password") && unknown.contains("Enter a correct email address and password"));
    // Registration and reset: the same next page either way.
    for (start, post) in [("/register", "/register"), ("/forgot-password", "/forgot-password")] {
        let mut a = WebClient::new(&app.base);
        a.get(start).await;
        let existing = a.post(post, &[("email", &citizen.email)]).await;
        let mut b = WebClient::new(&app.base);
        b.get(start).await;
        let fresh = b.post(post, &[("email", "someone.new@example.com")]).await;
        assert_eq!((existing.status, existing.heading()), (fresh.status, fresh.heading()), "{start}");
        let wrong = a.post(&format!("{post}{}", if start == "/register" { "/email-code" } else { "/code" }), &[("code", "000001")]).await;
        assert!(wrong.contains("You have 4 more tries"), "a guessed code behaves the same for existing emails: {start}");
    }
    // The account holder hears about the attempt instead.
    app.wait_for_template(&citizen.email, "account-already-exists").await;
}

async fn bad_input_gets_a_clear_error(app: TestApp) {
    let mut web = WebClient::new(&app.base);
    web.get("/signin").await;
    let page = web.post_raw("/signin", "application/x-www-form-urlencoded", vec![0xff, 0xfe, b'=', 0x80]).await;
    assert_eq!(page.status, 400);
    assert_eq!(page.heading(), "Sorry, we could not read that form");
    let page = web.post_raw("/signin", "application/x-www-form-urlencoded", vec![b'a'; 200_000]).await;
    assert_eq!(page.status, 413);
    let page = web.post("/signin", &[("email", "not an email"), ("password", "x")]).await;
    assert_eq!(page.status, 400);
    assert!(page.contains("nhsuk-error-summary") && page.contains("Enter an email address in the correct format"));
    // A form without the CSRF token is refused.
    let page = WebClient::new(&app.base).post("/signin", &[("email", "a@example.com"), ("password", "x")]).await;
    assert_eq!(page.status, 403);

    let http = reqwest::Client::new();
    let res = http.post(app.url("/token")).header("content-type", "application/x-www-form-urlencoded").body(vec![0xffu8, 0x00]).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "invalid_request");
    let res = http
        .post(app.url("/token"))
        .form(&[("grant_type", "authorization_code"), ("code", "x"), ("redirect_uri", "https://rp.example/callback"), ("client_assertion_type", crate::support::protocol::JWT_BEARER), ("client_assertion", "broken.jwt")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "invalid_client");
    let res = http.get(app.url("/no-such-page")).send().await.unwrap();
    assert_eq!(res.status(), 404);
}

async fn a_database_outage_is_a_503_not_a_crash(app: TestApp) {
    let http = reqwest::Client::new();
    assert_eq!(http.get(app.url("/ready")).send().await.unwrap().status(), 200);
    app.state.db.close().await;
    assert_eq!(http.get(app.url("/ready")).send().await.unwrap().status(), 503);
    assert_eq!(http.get(app.url("/health")).send().await.unwrap().status(), 200, "the process itself is alive");
    let mut web = WebClient::new(&app.base);
    let page = web.get("/signin").await;
    assert_eq!(page.status, 503);
    assert_eq!(page.heading(), "Sorry, the service is unavailable");
    let res = http.get(app.url("/authorize?client_id=x")).send().await.unwrap();
    assert_eq!(res.status(), 503);
}

async fn responses_carry_security_headers(app: TestApp) {
    let res = reqwest::Client::new().get(app.url("/signin")).send().await.unwrap();
    let h = res.headers();
    let csp = h.get("content-security-policy").unwrap().to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'nonce-"));
    assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
    let cookie = h.get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    let html = res.text().await.unwrap();
    let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap();
    assert!(html.contains(&format!("nonce=\"{nonce}\"")), "scripts carry this response's nonce");
    // A response that rendered no page hands out no nonce: its policy allows no script at all.
    let json = reqwest::Client::new().get(app.url("/.well-known/openid-configuration")).send().await.unwrap();
    let csp = json.headers().get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.contains("script-src 'none'") && csp.contains("frame-ancestors 'none'") && !csp.contains("nonce-"), "{csp}");
}

on_both_databases!(
    sign_in_attempts_are_rate_limited_per_ip,
    answers_do_not_reveal_which_emails_have_accounts,
    bad_input_gets_a_clear_error,
    a_database_outage_is_a_503_not_a_crash,
    responses_carry_security_headers,
);
