//! Wrong passwords slow the guesser, never the citizen, and tell nobody which emails exist
//! (`accounts::throttle`): counted per email and IP with growing delays, and per email up to
//! NIST's ceiling of 100, past which only an emailed link goes on. One-time codes: a slip is
//! not a try, and parallel guesses cannot share one try.

use crate::on_both_databases;
use crate::support::TestApp;
use crate::support::web::{Page, WebClient};

const WRONG: &str = "wrong-password-123";

async fn try_password(web: &mut WebClient, email: &str, password: &str) -> Page {
    web.get("/signin").await;
    web.post("/signin", &[("email", email), ("password", password)]).await
}

/// What a citizen sees: status, heading and every paragraph.
fn seen(page: &Page) -> (u16, String, Vec<String>) {
    let paragraphs = page.html.split("<p>").skip(1).filter_map(|p| p.split("</p>").next()).map(str::to_string).collect();
    (page.status.as_u16(), page.heading(), paragraphs)
}

async fn known_and_unknown_emails_get_the_same_answers(app: TestApp) {
    let citizen = app.citizen().await;
    let mut web = WebClient::from_ip(&app.base, "127.0.0.2");
    for n in 1..=5 {
        let known = try_password(&mut web, &citizen.email, WRONG).await;
        let unknown = try_password(&mut web, "nobody.here@example.com", WRONG).await;
        assert_eq!(seen(&known), seen(&unknown), "try {n}");
        assert_eq!(known.status, 401);
        assert!(known.contains("Enter a correct email address and password"));
    }
    // The sixth try from this IP waits, whichever the email, and nothing says "locked".
    let known = try_password(&mut web, &citizen.email, WRONG).await;
    let unknown = try_password(&mut web, "nobody.here@example.com", WRONG).await;
    assert_eq!(seen(&known), seen(&unknown));
    assert_eq!((known.status.as_u16(), known.heading().as_str()), (429, "Too many attempts"));
    assert!(known.contains("wait 1 minute"), "{}", known.html);
    assert!(!known.html.contains("locked"));
    // While the delay runs the password is not even checked: the right one waits too.
    let right = try_password(&mut web, &citizen.email, &citizen.password).await;
    assert_eq!(right.status, 429);
}

/// The finding: five wrong passwords locked the real account for 15 minutes, and one more every
/// 15 minutes kept it locked for good. Now the stranger's IP waits; the citizen signs in.
async fn a_stranger_guessing_does_not_keep_the_citizen_out(app: TestApp) {
    let citizen = app.citizen().await;
    let mut stranger = WebClient::from_ip(&app.base, "127.0.0.3");
    for _ in 0..6 {
        try_password(&mut stranger, &citizen.email, WRONG).await;
    }
    assert_eq!(try_password(&mut stranger, &citizen.email, WRONG).await.status, 429);
    let mut own = WebClient::from_ip(&app.base, "127.0.0.4");
    let page = try_password(&mut own, &citizen.email, &citizen.password).await;
    assert_eq!(page.heading(), "Enter the security code", "the citizen's own IP has no failures");
    let code = app.next_code(&citizen.mobile).await;
    let page = own.post("/signin/code", &[("code", &code)]).await;
    assert_ne!(page.heading(), "Enter the security code");
    assert!(own.get("/settings").await.contains(&citizen.email), "signed in");
}

/// Delays grow (1, then 2 minutes...), and the count is forgotten a day after the last failure:
/// a lock ends with its count.
async fn delays_grow_and_the_count_resets_when_the_lock_ends(app: TestApp) {
    let citizen = app.citizen().await;
    let mut web = WebClient::from_ip(&app.base, "127.0.0.5");
    for _ in 0..5 {
        assert_eq!(try_password(&mut web, &citizen.email, WRONG).await.status, 401);
    }
    assert!(try_password(&mut web, &citizen.email, WRONG).await.contains("wait 1 minute"));
    let back = |ms: i64| {
        let pool = app.state.db.pool().clone();
        async move { sqlx::query("UPDATE password_failures SET last_failure_at = last_failure_at - $1").bind(ms).execute(&pool).await.unwrap() }
    };
    // The minute passes: one more try, wrong, and the next waits two minutes.
    back(61_000).await;
    assert_eq!(try_password(&mut web, &citizen.email, WRONG).await.status, 401);
    assert!(try_password(&mut web, &citizen.email, WRONG).await.contains("wait 2 minutes"));
    // A day later the count starts again: five free tries.
    back(25 * 3_600_000).await;
    for _ in 0..5 {
        assert_eq!(try_password(&mut web, &citizen.email, WRONG).await.status, 401);
    }
    assert_eq!(try_password(&mut web, &citizen.email, WRONG).await.status, 429);
}

/// NIST's ceiling: 100 wrong passwords on one email, from 20 addresses. Then the password is not
/// checked for that email from anywhere, known or unknown alike; the owner is emailed a link,
/// and after it the citizen signs in as usual.
async fn the_ceiling_of_100_needs_the_emailed_link(app: TestApp) {
    let citizen = app.citizen().await;
    for n in 0..20 {
        let mut web = WebClient::from_ip(&app.base, &format!("127.0.1.{}", n + 1));
        for _ in 0..5 {
            try_password(&mut web, &citizen.email, WRONG).await;
            try_password(&mut web, "nobody.else@example.com", WRONG).await;
        }
    }
    let mut own = WebClient::from_ip(&app.base, "127.0.2.1");
    let known = try_password(&mut own, &citizen.email, &citizen.password).await;
    let unknown = try_password(&mut own, "nobody.else@example.com", WRONG).await;
    assert_eq!(seen(&known), seen(&unknown));
    assert_eq!(known.heading(), "Check your email", "even the right password waits for the link");
    app.wait_for_template(&citizen.email, "sign-in-unlock-link").await;
    let link = app.sink.latest_for(&citizen.email).unwrap().personalisation["link"].as_str().unwrap().to_string();
    assert!(app.sink.latest_for("nobody.else@example.com").is_none(), "nothing is sent where there is no account");
    // Opening the link changes nothing by itself (scanners fetch links); its button does.
    let page = own.get(&link).await;
    assert_eq!(page.heading(), "Continue signing in");
    assert_eq!(try_password(&mut WebClient::from_ip(&app.base, "127.0.2.2"), &citizen.email, &citizen.password).await.heading(), "Check your email");
    own.get(&link).await;
    let page = own.post("/signin/unlock", &[]).await;
    assert_eq!(page.heading(), "You can now sign in", "{}", page.html);
    let page = try_password(&mut own, &citizen.email, &citizen.password).await;
    assert_eq!(page.heading(), "Enter the security code");
    // Single use.
    own.get(&link).await;
    assert_eq!(own.post("/signin/unlock", &[]).await.heading(), "This link has expired");
}

async fn at_the_code_page(app: &TestApp, web: &mut WebClient, citizen: &crate::support::Citizen) -> String {
    let page = try_password(web, &citizen.email, &citizen.password).await;
    assert_eq!(page.heading(), "Enter the security code");
    app.next_code(&citizen.mobile).await
}

async fn a_slip_is_not_a_try_and_the_last_try_is_one(app: TestApp) {
    let citizen = app.citizen().await;
    let mut web = WebClient::new(&app.base);
    let real = at_the_code_page(&app, &mut web, &citizen).await;
    for slip in ["", "abc", "12345", "1234567"] {
        let page = web.post("/signin/code", &[("code", slip)]).await;
        assert_eq!(page.status, 400, "{slip:?}");
        assert!(page.contains("Enter the 6-digit security code"), "{slip:?}");
    }
    let wrong = if real == "000000" { "111111" } else { "000000" };
    for (n, expected) in ["You have 4 more tries.", "You have 3 more tries.", "You have 2 more tries.", "You have 1 more try."].iter().enumerate() {
        let page = web.post("/signin/code", &[("code", wrong)]).await;
        assert!(page.contains(expected), "wrong code {}: {}", n + 1, page.html);
    }
}

/// The finding: 30 guesses at once were each compared against the code (6 got through the
/// check of 5 tries). Each guess now takes its try first, in one statement.
async fn parallel_guesses_cannot_share_a_try(app: TestApp) {
    let citizen = app.citizen().await;
    let mut web = WebClient::new(&app.base);
    let real = at_the_code_page(&app, &mut web, &citizen).await;
    let page = web.get("/signin/code").await;
    let csrf = page.html.split("name=\"csrf_token\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_string();
    let cookie = format!("cid_session={}", web.cookie("cid_session").unwrap());
    let http = reqwest::Client::new();
    let wrong = if real == "000000" { "111111" } else { "000000" };
    let guesses = (0..30).map(|_| {
        let req = http
            .post(app.url("/signin/code"))
            .header("cookie", &cookie)
            .form(&[("code", wrong), ("csrf_token", csrf.as_str())]);
        async move { req.send().await.unwrap().text().await.unwrap() }
    });
    let answers = futures_util::future::join_all(guesses).await;
    let compared = answers.iter().filter(|a| a.contains("is not correct") || a.contains("Your account is locked")).count();
    assert!(compared <= 5, "{compared} of 30 guesses were compared against one code");
    let attempts: i64 = sqlx::query_scalar("SELECT attempts FROM one_time_codes WHERE subject = $1 AND purpose = 'sign-in'")
        .bind(&citizen.id)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(attempts, 5);
}

on_both_databases!(
    known_and_unknown_emails_get_the_same_answers,
    a_stranger_guessing_does_not_keep_the_citizen_out,
    delays_grow_and_the_count_resets_when_the_lock_ends,
    the_ceiling_of_100_needs_the_emailed_link,
    a_slip_is_not_a_try_and_the_last_try_is_one,
    parallel_guesses_cannot_share_a_try,
);
