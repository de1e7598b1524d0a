//! Headless Chromium: the sample partner's button, registration through the real pages,
//! consent, and the claims back at the partner; an accessibility check on each page.

use crate::support::browser::Browser;
use crate::support::{Backend, TestApp};

async fn assert_accessible(page: &crate::support::browser::Page, what: &str) {
    let violations = page.check_accessibility().await.expect("axe ran");
    assert!(violations.is_empty(), "{what}: {violations:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_citizen_registers_from_the_sample_partner_in_chromium() {
    let Some(browser) = Browser::launch().await.expect("chromium") else { return };
    let app = TestApp::start(Backend::Sqlite).await.unwrap();
    let page = browser.new_page().await.unwrap();
    page.goto(&app.url("/demo")).await.unwrap();
    assert_accessible(&page, "sample partner").await;
    page.submit_and_wait("#continue-with-citizen-id").await.unwrap();
    assert!(page.url().await.unwrap().ends_with("/signin"));
    assert_accessible(&page, "sign in").await;
    page.goto(&app.url("/register")).await.unwrap();
    assert_accessible(&page, "register").await;
    page.fill("#email", "chromium.citizen@example.com").await.unwrap();
    page.submit_and_wait("button[type=submit]").await.unwrap();
    assert_eq!(page.text("h1").await.unwrap(), "Check your email", "{}", page.content().await.unwrap());
    let code = app.next_code("chromium.citizen@example.com").await;
    page.fill("#code", &code).await.unwrap();
    page.submit_and_wait("button[type=submit]").await.unwrap();
    assert_accessible(&page, "create a password").await;
    page.fill("#password", crate::support::PASSWORD).await.unwrap();
    page.fill("#confirm", crate::support::PASSWORD).await.unwrap();
    page.submit_and_wait("button[type=submit]").await.unwrap();
    page.fill("#mobile", "07700 900456").await.unwrap();
    page.submit_and_wait("button[type=submit]").await.unwrap();
    let code = app.next_code("+447700900456").await;
    page.fill("#code", &code).await.unwrap();
    page.submit_and_wait("button[type=submit]").await.unwrap();
    assert_eq!(page.text("h1").await.unwrap(), "Sign in faster with a passkey");
    assert_accessible(&page, "passkey offer").await;
    page.submit_and_wait("#passkey-skip").await.unwrap();
    assert_eq!(page.text("h1").await.unwrap(), "Share your details with Sample partner service");
    assert_accessible(&page, "consent").await;
    page.submit_and_wait("button[value=agree]").await.unwrap();
    let claims = page.text("#claims").await.unwrap();
    assert!(claims.contains("\"vot\": \"P0.Cp.Cd\""), "{claims}");
    assert!(claims.contains("chromium.citizen@example.com"), "{claims}");
    page.screenshot_png(std::path::Path::new(&std::env::temp_dir().join("citizen-id-demo-claims.png"))).await.unwrap();
}
