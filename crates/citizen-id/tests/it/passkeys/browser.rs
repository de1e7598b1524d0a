//! Passkeys in headless Chromium with the CDP virtual authenticator (a CTAP2 platform
//! authenticator with resident keys and user verification): the real pages and the real
//! `passkeys.js`. Skipped loudly without Chromium, failing under CI=true (`Browser::launch`).

use std::time::Duration;

use crate::support::browser::{Browser, Page};
use crate::support::protocol::{assertion, authorize_url, challenge, exchange};
use crate::support::{Backend, PASSWORD, TestApp};

const WAIT: Duration = Duration::from_secs(15);

async fn launch() -> Option<(Browser, TestApp, Page)> {
    let browser = Browser::launch().await.expect("chromium")?;
    let app = TestApp::start_localhost(Backend::Sqlite).await.unwrap();
    let page = browser.new_page().await.unwrap();
    Some((browser, app, page))
}

async fn assert_accessible(page: &Page, what: &str) {
    let violations = page.check_accessibility().await.expect("axe ran");
    assert!(violations.is_empty(), "{what}: {violations:#?}");
}

async fn path(page: &Page) -> String {
    page.eval("location.pathname").await.unwrap().as_str().unwrap_or_default().to_string()
}

async fn heading(page: &Page) -> String {
    page.text("h1").await.unwrap()
}

/// Waits for the page to leave `from` (the ceremonies navigate from script) and load.
async fn left(page: &Page, from: &str) {
    let js = format!("location.pathname !== {from:?} && document.readyState === 'complete'");
    if let Err(e) = page.wait_for(&js, WAIT).await {
        let error = page.text("[data-passkey-error-text]").await.unwrap_or_default();
        panic!("still on {from}: {e:#}; shown: {error}");
    }
}

/// Waits for the script to reveal `selector` (it does so only where passkeys are supported).
async fn revealed(page: &Page, selector: &str) {
    let js = format!("document.querySelector({selector:?}) && !document.querySelector({selector:?}).closest('[hidden]')");
    page.wait_for(&js, WAIT).await.unwrap_or_else(|e| panic!("{selector} never shown: {e:#}"));
}

/// Creates a passkey on the current page ("Create a passkey"), then waits for the next page
/// (which may be the same address, reloaded).
async fn create_passkey(page: &Page, name: &str) {
    revealed(page, "#passkey-create").await;
    page.fill("#passkey-name", name).await.unwrap();
    page.eval("window.__before_passkey = true").await.unwrap();
    page.click("#passkey-create").await.unwrap();
    let js = "window.__before_passkey === undefined && document.readyState === 'complete'";
    if let Err(e) = page.wait_for(js, WAIT).await {
        let error = page.text("[data-passkey-error-text]").await.unwrap_or_default();
        panic!("no page after creating a passkey: {e:#}; shown: {error}");
    }
}

/// "Sign in with a passkey" on /signin, with the email typed or not.
async fn passkey_sign_in(page: &Page, app: &TestApp, email: Option<&str>) {
    page.goto(&app.url("/signin")).await.unwrap();
    click_passkey_button(page, email).await;
    left(page, "/signin").await;
}

async fn click_passkey_button(page: &Page, email: Option<&str>) {
    revealed(page, "#passkey-signin").await;
    if let Some(email) = email {
        page.fill("#email", email).await.unwrap();
    }
    page.click("#passkey-signin").await.unwrap();
}

/// Chromium's virtual authenticator answers a conditional-mediation request (the autofill)
/// at once, as if the citizen had picked the passkey from the email field's suggestions. To
/// exercise the button, later documents of `page` report conditional mediation unavailable.
async fn without_autofill(page: &Page) {
    let source = "if (window.PublicKeyCredential) PublicKeyCredential.isConditionalMediationAvailable = async () => false;";
    page.call("Page.addScriptToEvaluateOnNewDocument", serde_json::json!({ "source": source })).await.unwrap();
}

async fn signed_in(page: &Page) -> bool {
    page.exists(".nhsuk-header__account-button").await.unwrap()
}

async fn sign_out(page: &Page) {
    page.submit_and_wait(".nhsuk-header__account-button").await.unwrap();
    assert!(!signed_in(page).await);
}

async fn submit(page: &Page) {
    page.submit_and_wait("button[type=submit]").await.unwrap();
}

/// Registers through the forms up to the password step.
async fn register_to_password(page: &Page, app: &TestApp, email: &str) {
    page.goto(&app.url("/register")).await.unwrap();
    page.fill("#email", email).await.unwrap();
    submit(page).await;
    let code = app.next_code(email).await;
    page.fill("#code", &code).await.unwrap();
    submit(page).await;
    assert_eq!(heading(page).await, "Create a password");
}

async fn verify_mobile(page: &Page, app: &TestApp, national: &str, e164: &str) {
    page.fill("#mobile", national).await.unwrap();
    submit(page).await;
    let code = app.next_code(e164).await;
    page.fill("#code", &code).await.unwrap();
    submit(page).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_are_added_used_both_ways_and_removed_in_chromium() {
    let Some((_browser, app, page)) = launch().await else { return };
    let authenticator = page.enable_virtual_authenticator().await.unwrap();
    // A tall window, so the screenshots show whole pages.
    let metrics = serde_json::json!({ "width": 1000, "height": 1500, "deviceScaleFactor": 1, "mobile": false });
    page.call("Emulation.setDeviceMetricsOverride", metrics).await.unwrap();
    let email = "passkey.citizen@example.com";
    register_to_password(&page, &app, email).await;
    page.fill("#password", PASSWORD).await.unwrap();
    page.fill("#confirm", PASSWORD).await.unwrap();
    submit(&page).await;
    verify_mobile(&page, &app, "07700 900321", "+447700900321").await;

    // Offered right after registration; skippable, but taken here.
    assert_eq!(heading(&page).await, "Sign in faster with a passkey");
    assert!(page.exists("#passkey-skip").await.unwrap());
    assert_accessible(&page, "passkey offer").await;
    create_passkey(&page, "Chromium").await;
    assert_eq!(path(&page).await, "/");
    let credentials = page.credentials(&authenticator).await.unwrap();
    assert_eq!(credentials.len(), 1);
    assert_eq!(credentials[0]["isResidentCredential"], true, "a discoverable credential");
    page.goto(&app.url("/account/passkeys")).await.unwrap();
    assert!(page.text("#passkeys").await.unwrap().contains("Chromium"));
    assert_accessible(&page, "account passkeys").await;
    page.screenshot_png(std::env::temp_dir().join("citizen-id-passkeys.png")).await.unwrap();

    // Usernameless through the autofill (conditional UI: answered at once by the virtual
    // authenticator), then with the button, without and with the email typed.
    sign_out(&page).await;
    page.goto(&app.url("/signin")).await.unwrap();
    left(&page, "/signin").await;
    assert!(signed_in(&page).await, "usernameless sign-in from the autofill");
    without_autofill(&page).await;
    sign_out(&page).await;
    page.goto(&app.url("/signin")).await.unwrap();
    let autocomplete = page.eval("document.querySelector('#email').getAttribute('autocomplete')").await.unwrap();
    assert_eq!(autocomplete, "username webauthn", "the email field offers passkeys as autofill");
    revealed(&page, "#passkey-signin").await;
    assert_accessible(&page, "sign in with passkey button").await;
    page.screenshot_png(std::env::temp_dir().join("citizen-id-passkey-signin.png")).await.unwrap();
    click_passkey_button(&page, None).await;
    left(&page, "/signin").await;
    assert!(signed_in(&page).await, "usernameless sign-in with the button");
    sign_out(&page).await;
    passkey_sign_in(&page, &app, Some(email)).await;
    assert!(signed_in(&page).await, "sign-in after typing the email");
    sign_out(&page).await;

    // A partner asking for P0.Cm gets vot P0.Cm.
    let p = app.partner_redirecting_to("openid email", &["P0.Cm"], &app.url("/partner/callback")).await;
    let account = app.state.db.account_by_email(email).await.unwrap().unwrap();
    app.state.db.save_consent(&account.id, &p.client_id, "openid email", 0).await.unwrap();
    let ch = challenge();
    let url = authorize_url(&app, &p, &[("vtr", r#"["P0.Cm"]"#), ("code_challenge", &ch), ("code_challenge_method", "S256")]);
    page.goto(&url).await.unwrap();
    assert_eq!(path(&page).await, "/signin");
    click_passkey_button(&page, None).await;
    left(&page, "/signin").await;
    let at = url::Url::parse(&page.url().await.unwrap()).unwrap();
    assert_eq!(at.path(), "/partner/callback");
    let code = at.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).expect("a code");
    let (status, tokens) = exchange(&app, &p, &code, &assertion(&app, &p)).await;
    assert_eq!(status, 200, "{tokens}");
    let payload = tokens["id_token"].as_str().unwrap().split('.').nth(1).unwrap().to_string();
    let claims: serde_json::Value = serde_json::from_slice(&citizen_id::crypto::b64url_decode(&payload).unwrap()).unwrap();
    assert_eq!(claims["vot"], "P0.Cm");

    // Removed: the authenticator still has it, the service refuses it.
    page.goto(&app.url("/account/passkeys")).await.unwrap();
    page.submit_and_wait("[data-remove-passkey]").await.unwrap();
    assert!(page.text("#notice").await.unwrap().contains("has been removed"));
    sign_out(&page).await;
    page.goto(&app.url("/signin")).await.unwrap();
    click_passkey_button(&page, None).await;
    revealed(&page, "[data-passkey-error]").await;
    assert!(page.text("[data-passkey-error]").await.unwrap().contains("We could not sign you in with that passkey"));
    assert_eq!(path(&page).await, "/signin");
    assert!(!signed_in(&page).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwordless_registration_and_recovery_in_chromium() {
    let Some((_browser, app, page)) = launch().await else { return };
    without_autofill(&page).await;
    let first = page.enable_virtual_authenticator().await.unwrap();
    let email = "passwordless@example.com";
    register_to_password(&page, &app, email).await;
    page.submit_and_wait("a[href='/register/passkey-instead']").await.unwrap();
    assert_eq!(path(&page).await, "/register/passkey-instead");
    revealed(&page, "form[action='/register/passkey-instead']").await;
    assert_accessible(&page, "passkey instead of a password").await;
    submit(&page).await;
    verify_mobile(&page, &app, "07700 900654", "+447700900654").await;
    assert_eq!(heading(&page).await, "Create your passkey");
    assert_accessible(&page, "first passkey").await;
    create_passkey(&page, "First phone").await;
    assert!(signed_in(&page).await, "the first passkey signs the citizen in");
    assert!(app.state.db.account_by_email(email).await.unwrap().unwrap().password_hash.is_none());

    // The device is lost; a new one recovers the account with email and SMS codes.
    page.remove_virtual_authenticator(&first).await.unwrap();
    let second = page.enable_virtual_authenticator().await.unwrap();
    sign_out(&page).await;
    page.goto(&app.url("/forgot-password")).await.unwrap();
    page.fill("#email", email).await.unwrap();
    submit(&page).await;
    page.fill("#code", &app.next_code(email).await).await.unwrap();
    submit(&page).await;
    page.fill("#code", &app.next_code("+447700900654").await).await.unwrap();
    submit(&page).await;
    page.goto(&app.url("/forgot-password/passkey")).await.unwrap();
    assert_eq!(heading(&page).await, "Create a new passkey");
    create_passkey(&page, "New phone").await;
    assert_eq!(heading(&page).await, "Your new passkey is ready");
    assert_eq!(page.credentials(&second).await.unwrap().len(), 1);
    passkey_sign_in(&page, &app, None).await;
    assert!(signed_in(&page).await, "signed in with the new passkey");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_without_user_verification_is_refused_in_chromium() {
    let Some((_browser, app, page)) = launch().await else { return };
    without_autofill(&page).await;
    let authenticator = page.enable_virtual_authenticator().await.unwrap();
    let citizen = app.citizen().await;
    page.goto(&app.url("/signin")).await.unwrap();
    page.fill("#email", &citizen.email).await.unwrap();
    page.fill("#password", &citizen.password).await.unwrap();
    submit(&page).await;
    page.fill("#code", &app.next_code(&citizen.mobile).await).await.unwrap();
    submit(&page).await;
    page.goto(&app.url("/account/passkeys")).await.unwrap();
    create_passkey(&page, "Laptop").await;
    sign_out(&page).await;

    page.set_user_verified(&authenticator, false).await.unwrap();
    page.goto(&app.url("/signin")).await.unwrap();
    click_passkey_button(&page, Some(&citizen.email)).await;
    revealed(&page, "[data-passkey-error]").await;
    assert_eq!(path(&page).await, "/signin");
    assert!(!signed_in(&page).await, "no sign-in without user verification");
}

/// "Confirm it's you" in Chromium (issue 15 item 2): with the credential older than the window,
/// a settings page sends the citizen to confirm; "Use a passkey" (the real passkeys.js, a
/// ceremony for this account) brings them back. Adding a passkey from a page opened before
/// the window ran out is refused by the server and the script goes to the confirm page, where
/// the password and SMS code bring the citizen back to their passkeys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirming_it_is_you_with_a_passkey_or_password_in_chromium() {
    let Some((_browser, app, page)) = launch().await else { return };
    without_autofill(&page).await;
    let authenticator = page.enable_virtual_authenticator().await.unwrap();
    let citizen = app.citizen().await;
    page.goto(&app.url("/signin")).await.unwrap();
    page.fill("#email", &citizen.email).await.unwrap();
    page.fill("#password", &citizen.password).await.unwrap();
    submit(&page).await;
    page.fill("#code", &app.next_code(&citizen.mobile).await).await.unwrap();
    submit(&page).await;
    page.goto(&app.url("/account/passkeys")).await.unwrap();
    create_passkey(&page, "Laptop").await;
    assert_eq!(page.credentials(&authenticator).await.unwrap().len(), 1);

    crate::reauth::expire(&app, &citizen.id).await;
    page.goto(&app.url("/settings/email")).await.unwrap();
    assert_eq!((path(&page).await.as_str(), heading(&page).await.as_str()), ("/confirm-it-is-you", "Confirm it's you"));
    revealed(&page, "#passkey-signin").await;
    assert_accessible(&page, "confirm it's you").await;
    page.click("#passkey-signin").await.unwrap();
    left(&page, "/confirm-it-is-you").await;
    assert_eq!((path(&page).await.as_str(), heading(&page).await.as_str()), ("/settings/email", "Change your email address"));

    page.goto(&app.url("/account/passkeys")).await.unwrap();
    revealed(&page, "#passkey-create").await;
    crate::reauth::expire(&app, &citizen.id).await;
    page.click("#passkey-create").await.unwrap();
    left(&page, "/account/passkeys").await;
    assert_eq!(path(&page).await, "/confirm-it-is-you");
    assert_eq!(page.credentials(&authenticator).await.unwrap().len(), 1, "no passkey was made");
    page.fill("#password", &citizen.password).await.unwrap();
    page.submit_and_wait("main form button[type=submit]").await.unwrap();
    assert_eq!(heading(&page).await, "Enter the security code");
    assert_accessible(&page, "confirm it's you: the code").await;
    page.fill("#code", &app.next_code(&citizen.mobile).await).await.unwrap();
    page.submit_and_wait("main form button[type=submit]").await.unwrap();
    assert_eq!(path(&page).await, "/account/passkeys");
    // Another device (this one already holds the account's passkey).
    page.remove_virtual_authenticator(&authenticator).await.unwrap();
    let second = page.enable_virtual_authenticator().await.unwrap();
    page.goto(&app.url("/account/passkeys")).await.unwrap();
    create_passkey(&page, "Second").await;
    assert_eq!(page.credentials(&second).await.unwrap().len(), 1, "once confirmed, adding works");
    assert_eq!(app.state.db.passkeys_for_account(&citizen.id).await.unwrap().len(), 2);
}
