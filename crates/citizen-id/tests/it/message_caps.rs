//! No message bombing: the "five codes an hour" cap counted per journey, new on every request,
//! so anonymous visitors could send unlimited reset and "you already have an account" emails
//! to anyone. Caps now count per recipient and per client IP across every journey, in the
//! database; the page that says so is the same whoever the address belongs to.

use crate::on_both_databases;
use crate::support::TestApp;
use crate::support::web::{Page, WebClient};

async fn start_reset(app: &TestApp, ip: &str, email: &str) -> Page {
    let mut web = WebClient::from_ip(&app.base, ip);
    web.get("/forgot-password").await;
    web.post("/forgot-password", &[("email", email)]).await
}

async fn start_registration(app: &TestApp, ip: &str, email: &str) -> Page {
    let mut web = WebClient::from_ip(&app.base, ip);
    web.get("/register").await;
    web.post("/register", &[("email", email)]).await
}

async fn one_inbox_gets_at_most_the_cap_whatever_the_journey(app: TestApp) {
    let citizen = app.citizen().await;
    let cap = app.state.settings.limits.messages_per_recipient_per_hour;
    // From a different address each time, alternating resets and registrations: every one a
    // fresh journey, as the attacker's script made them.
    let mut answers = Vec::new();
    for n in 0..cap + 3 {
        let ip = format!("127.0.3.{}", n + 1);
        let page = if n % 2 == 0 { start_reset(&app, &ip, &citizen.email).await } else { start_registration(&app, &ip, &citizen.email).await };
        answers.push((page.status.as_u16(), page.heading()));
    }
    assert!(answers[..cap as usize].iter().all(|(s, _)| *s == 200), "{answers:?}");
    assert!(answers[cap as usize..].iter().all(|a| *a == (429, "Too many codes requested".to_string())), "{answers:?}");
    // What reached the citizen: at most the cap, across both kinds.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let sent = app.templates_sent_to(&citizen.email);
    assert!(sent.len() as i64 <= cap, "{} messages: {sent:?}", sent.len());
    assert!(sent.iter().any(|t| t == "account-already-exists") && sent.iter().any(|t| t == "password-reset-code"), "{sent:?}");
    // An address with no account gets the same answers at the same count.
    let mut unknown = Vec::new();
    for n in 0..cap + 1 {
        unknown.push(start_reset(&app, &format!("127.0.4.{}", n + 1), "nobody.at.all@example.com").await.status.as_u16());
    }
    assert_eq!(unknown.iter().filter(|s| **s == 429).count(), 1, "{unknown:?}");
}

async fn one_address_cannot_send_to_everyone(app: TestApp) {
    let cap = app.state.settings.limits.messages_per_ip_per_hour;
    let mut statuses = Vec::new();
    // Resets and registrations in turn: each journey's own per-minute limit stays out of the way.
    for n in 0..=cap {
        let email = format!("person{n}@example.com");
        let page = if n % 2 == 0 { start_reset(&app, "127.0.5.1", &email).await } else { start_registration(&app, "127.0.5.1", &email).await };
        statuses.push(page.status.as_u16());
    }
    assert!(statuses[..cap as usize].iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(statuses[cap as usize], 429);
    assert_eq!(start_reset(&app, "127.0.5.2", "someone.else@example.com").await.status, 200, "another address is not held back");
}

/// A signed-in account could text any mobile without end by changing its number again and again.
async fn a_signed_in_account_cannot_flood_a_phone(app: TestApp) {
    let citizen = app.citizen().await;
    let victim = "07700 900777";
    let cap = app.state.settings.limits.messages_per_recipient_per_hour;
    let mut web = WebClient::new(&app.base);
    crate::support::flows::sign_in(&app, &mut web, &citizen).await;
    let mut statuses = Vec::new();
    for _ in 0..cap + 2 {
        web.get("/settings/mobile").await;
        let page = web.post("/settings/mobile", &[("mobile", victim)]).await;
        statuses.push(page.status.as_u16());
    }
    assert!(statuses[..cap as usize].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(statuses[cap as usize..].iter().all(|s| *s == 429), "{statuses:?}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(app.templates_sent_to("+447700900777").len() as i64 <= cap);
}

on_both_databases!(one_inbox_gets_at_most_the_cap_whatever_the_journey, one_address_cannot_send_to_everyone, a_signed_in_account_cannot_flood_a_phone);
