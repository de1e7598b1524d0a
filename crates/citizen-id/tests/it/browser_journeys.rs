//! Headless Chromium through proving identity (a partner's P9 request, uplift, `vot` P9) and
//! Settings (a re-verified mobile change; consent withdrawal then a new consent prompt).

use crate::support::browser::{Browser, Page};
use crate::support::{Backend, Citizen, TestApp};

async fn submit(page: &Page, fields: &[(&str, &str)]) {
    for (selector, value) in fields {
        page.fill(selector, value).await.unwrap();
    }
    page.submit_and_wait("main button[type=submit]").await.unwrap();
}

async fn h1(page: &Page) -> String {
    page.text("h1").await.unwrap()
}

async fn sign_in(app: &TestApp, page: &Page, citizen: &Citizen) {
    assert_eq!(h1(page).await, "Sign in");
    submit(page, &[("#email", &citizen.email), ("#password", &citizen.password)]).await;
    let code = app.next_code(&citizen.mobile).await;
    submit(page, &[("#code", &code)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_asks_for_p9_and_the_citizen_proves_it_in_chromium() {
    let Some(browser) = Browser::launch().await.expect("chromium") else { return };
    let app = TestApp::start(Backend::Sqlite).await.unwrap();
    // Sarah Thompson of the documented PDS patients, registered with her PDS mobile (IDVM).
    let citizen = app.citizen_with_mobile("+447700900001").await;
    let page = browser.new_page().await.unwrap();
    page.goto(&app.url("/demo")).await.unwrap();
    page.eval("document.querySelector('#level').value = 'P9.Cp.Cd'").await.unwrap();
    page.submit_and_wait("#continue-with-citizen-id").await.unwrap();
    sign_in(&app, &page, &citizen).await;
    assert_eq!(h1(&page).await, "Enter your details");
    let violations = page.check_accessibility().await.unwrap();
    assert!(violations.is_empty(), "{violations:#?}");
    submit(
        &page,
        &[("#given_name", "Sarah"), ("#family_name", "Thompson"), ("#dob_day", "14"), ("#dob_month", "3"), ("#dob_year", "1985"), ("#postcode", "LS1 4AP")],
    )
    .await;
    assert_eq!(h1(&page).await, "Share your details with Sample partner service");
    page.submit_and_wait("button[value=agree]").await.unwrap();
    let claims = page.text("#claims").await.unwrap();
    assert!(claims.contains("\"vot\": \"P9.Cp.Cd\""), "{claims}");
    assert!(claims.contains("\"nhs_number\": \"9990000018\""), "{claims}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_in_chromium_change_mobile_and_withdraw_consent() {
    let Some(browser) = Browser::launch().await.expect("chromium") else { return };
    let app = TestApp::start(Backend::Sqlite).await.unwrap();
    let citizen = app.citizen().await;
    let page = browser.new_page().await.unwrap();
    // Use the sample partner once, so there is a connected service.
    page.goto(&app.url("/demo")).await.unwrap();
    page.submit_and_wait("#continue-with-citizen-id").await.unwrap();
    sign_in(&app, &page, &citizen).await;
    page.submit_and_wait("button[value=agree]").await.unwrap();
    assert!(page.text("#claims").await.unwrap().contains(&citizen.email));

    page.goto(&app.url("/settings")).await.unwrap();
    assert_eq!(h1(&page).await, "Your Citizen ID account");
    let violations = page.check_accessibility().await.unwrap();
    assert!(violations.is_empty(), "{violations:#?}");
    page.goto(&app.url("/settings/mobile")).await.unwrap();
    submit(&page, &[("#mobile", "07700 900321")]).await;
    assert_eq!(h1(&page).await, "Enter the security code");
    let code = app.next_code("+447700900321").await;
    submit(&page, &[("#code", &code)]).await;
    assert_eq!(page.text("#notice").await.unwrap(), "Your mobile phone number has been changed.");

    page.goto(&app.url("/settings/services")).await.unwrap();
    assert!(page.content().await.unwrap().contains("Sample partner service"));
    page.submit_and_wait("main form button[type=submit]").await.unwrap();
    assert!(page.text("#notice").await.unwrap().contains("stopped sharing"));
    page.goto(&app.url("/demo")).await.unwrap();
    page.submit_and_wait("#continue-with-citizen-id").await.unwrap();
    assert_eq!(h1(&page).await, "Share your details with Sample partner service", "consent is asked again");
}
