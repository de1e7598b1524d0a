//! Rate limits, no account enumeration, bad input and a database outage: each gets a clear
//! answer of the right kind, never a panic or a half-written record.

use crate::on_both_databases;
use crate::support::web::WebClient;
use crate::support::flows::sign_in;
use crate::support::{Backend, TestApp, within_one_window};

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
    // An oversized body is refused unread, and the server closes that connection: a browser
    // opens a new one for its next request, so this one goes in a client of its own.
    let page = WebClient::new(&app.base).post_raw("/signin", "application/x-www-form-urlencoded", vec![b'a'; 200_000]).await;
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
    // An anonymous page needs no stored session, so it still renders; its form cannot go on.
    let page = web.get("/signin").await;
    assert_eq!(page.status, 200);
    let page = web.post("/signin", &[("email", "someone@example.com"), ("password", "a-password-of-theirs")]).await;
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
    // On http://127.0.0.1 (development): no Secure cookie, no `__Host-` prefix, no HSTS.
    assert!(cookie.starts_with("cid_session=") && !cookie.contains("Secure"), "{cookie}");
    assert!(h.get("strict-transport-security").is_none());
    let html = res.text().await.unwrap();
    let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap();
    assert!(html.contains(&format!("nonce=\"{nonce}\"")), "scripts carry this response's nonce");
    // A response that rendered no page hands out no nonce: its policy allows no script at all.
    let json = reqwest::Client::new().get(app.url("/.well-known/openid-configuration")).send().await.unwrap();
    let csp = json.headers().get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.contains("script-src 'none'") && csp.contains("frame-ancestors 'none'") && !csp.contains("nonce-"), "{csp}");
}

/// Behind TLS (an https issuer): the session cookie is `Secure` with the `__Host-` prefix (so no
/// `Domain`, and `Path=/`), and every response asks for HTTPS from then on (HSTS).
async fn outside_localhost_cookies_are_host_only_and_secure_and_hsts_is_sent(backend: Backend) {
    let Some(app) = TestApp::start_behind_tls_proxy(backend).await else { return };
    let res = reqwest::Client::new().get(app.url("/signin")).send().await.unwrap();
    let h = res.headers();
    assert_eq!(h["strict-transport-security"], "max-age=31536000; includeSubDomains");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("__Host-cid_session="), "{cookie}");
    for part in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.split("; ").any(|p| p == part), "{part} missing: {cookie}");
    }
    assert!(!cookie.contains("Domain="), "{cookie}");
    let json = reqwest::Client::new().get(app.url("/.well-known/openid-configuration")).send().await.unwrap();
    assert_eq!(json.headers()["strict-transport-security"], "max-age=31536000; includeSubDomains");
    let discovery: serde_json::Value = json.json().await.unwrap();
    assert_eq!(discovery["issuer"], "https://citizen-id.example");
}

mod outside_localhost {
    use crate::support::Backend;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::outside_localhost_cookies_are_host_only_and_secure_and_hsts_is_sent(Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::outside_localhost_cookies_are_host_only_and_secure_and_hsts_is_sent(Backend::Postgres).await
    }
}

/// Session fixation: signing in gives the browser a new session id, and the id it had before
/// no longer signs anyone in.
async fn the_session_id_changes_at_sign_in(app: TestApp) {
    let citizen = app.citizen().await;
    let mut web = WebClient::new(&app.base);
    web.get("/signin").await;
    let before = web.cookie("cid_session").expect("a session cookie before sign-in");
    let page = sign_in(&app, &mut web, &citizen).await;
    assert_ne!(page.status, 401, "{}", page.heading());
    let after = web.cookie("cid_session").expect("a session cookie after sign-in");
    assert_ne!(before, after, "the session id is rotated at sign-in");
    let settings_with = |id: String| {
        let url = app.url("/settings");
        async move {
            let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
            let res = http.get(url).header("cookie", format!("cid_session={id}")).send().await.unwrap();
            (res.status().as_u16(), res.headers().get("location").map(|l| l.to_str().unwrap().to_string()))
        }
    };
    assert_eq!(settings_with(after).await.0, 200, "the new id is signed in");
    let (status, location) = settings_with(before).await;
    assert!(status == 303 && location.as_deref().is_some_and(|l| l.starts_with("/signin")), "the old id is not: {status} {location:?}");
}

/// CSRF (issue item 6): a form posted with the citizen's session cookie but not the session's
/// token, as a forged cross-site post would be, is refused on every form route and changes
/// nothing: the citizen is still signed in, with the same details, afterwards.
async fn every_form_refuses_a_post_without_its_token(app: TestApp) {
    let citizen = app.citizen().await;
    let mut web = WebClient::new(&app.base);
    sign_in(&app, &mut web, &citizen).await;
    let routes = [
        "/signin", "/signin/code", "/signin/code/resend", "/signin/unlock", "/sign-out", "/register", "/register/email-code", "/register/password", "/register/mobile",
        "/register/mobile-code", "/register/passkey-instead", "/forgot-password", "/forgot-password/code", "/forgot-password/sms-code",
        "/forgot-password/new-password", "/account/passkeys/remove", "/account/password/remove", "/consent", "/prove-identity/details",
        "/prove-identity/gp", "/prove-identity/mobile", "/prove-identity/mobile/send", "/settings/email", "/settings/email/code", "/settings/mobile",
        "/settings/mobile/code", "/settings/landline", "/settings/password", "/settings/services/withdraw",
        "/settings/sign-out-everywhere", "/settings/delete",
    ];
    let forged = format!("csrf_token=forged&email=attacker%40example.com&password={}&confirm=x&mobile=07700900999&code=123456", citizen.password);
    for route in routes {
        let page = web.post_raw(route, "application/x-www-form-urlencoded", forged.clone().into_bytes()).await;
        assert_eq!((page.status.as_u16(), page.heading().as_str()), (403, "Your session has expired"), "{route}");
    }
    assert_eq!(web.get("/settings").await.status, 200, "still signed in: the sign-out forms did nothing");
    let account = app.state.db.account(&citizen.id).await.unwrap().expect("the account is still there");
    assert_eq!((account.email.as_str(), account.mobile.as_deref()), (citizen.email.as_str(), Some(citizen.mobile.as_str())));
}

on_both_databases!(
    every_form_refuses_a_post_without_its_token,
    the_session_id_changes_at_sign_in,
    sign_in_attempts_are_rate_limited_per_ip,
    answers_do_not_reveal_which_emails_have_accounts,
    bad_input_gets_a_clear_error,
    a_database_outage_is_a_503_not_a_crash,
    responses_carry_security_headers,
);
