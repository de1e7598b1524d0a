//! Passkeys (F9, `Cm`): the ceremonies through the JSON endpoints with a software
//! authenticator (both databases), and the real pages in headless Chromium with the CDP
//! virtual authenticator (`passkeys/browser.rs`). Every server here has the issuer
//! `http://localhost:PORT`: WebAuthn needs an RP id that is a domain name.

mod browser;
mod client;
mod negative;
pub(crate) mod softkey;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::protocol::{assertion, authorize_url, challenge, exchange};
use crate::support::{TestApp, TestPartner};
use client::PasskeyClient;
use softkey::{Answer, SoftKey};

/// `on_both_databases!` for servers whose issuer is `http://localhost:PORT`.
/// `on_both_databases!` on a server at http://localhost (passkeys need a host name; partner
/// libraries may use http there, RFC 8252 7.3).
#[macro_export]
macro_rules! at_localhost_on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::support::{Backend, TestApp};
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(TestApp::start_localhost(Backend::Sqlite).await.expect("sqlite")).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = TestApp::start_localhost(Backend::Postgres).await {
                    super::$name(app).await
                }
            }
        }
    )*};
}
pub(crate) use at_localhost_on_both_databases;

/// Adds a passkey for whoever `client` is enrolling (signed in, or in a journey that allows it).
pub async fn add_passkey(app: &TestApp, client: &mut PasskeyClient, name: &str) -> SoftKey {
    let (status, options) = client.json("/passkeys/register/start", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{options}");
    assert_eq!(options["publicKey"]["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(options["publicKey"]["authenticatorSelection"]["residentKey"], "required");
    let (key, credential) = SoftKey::register(&options, &Answer::from(&app.base));
    let (status, body) = client.json("/passkeys/register/finish", &json!({ "name": name, "credential": credential })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    key
}

/// Starts a passkey sign-in (usernameless, or for `email`) from the sign-in page.
pub async fn start_sign_in(client: &mut PasskeyClient, email: Option<&str>) -> Value {
    client.get("/signin").await;
    let body = email.map(|e| json!({ "email": e })).unwrap_or_else(|| json!({}));
    let (status, options) = client.json("/passkeys/signin/start", &body).await;
    assert_eq!(status, StatusCode::OK, "{options}");
    options
}

/// A whole passkey sign-in; returns the finish's status and answer.
pub async fn sign_in(app: &TestApp, client: &mut PasskeyClient, key: &mut SoftKey, email: Option<&str>) -> (StatusCode, Value) {
    let options = start_sign_in(client, email).await;
    let credential = key.assert(&options, &Answer::from(&app.base));
    client.json("/passkeys/signin/finish", &json!({ "credential": credential })).await
}

/// The claims of an ID token (already verified by the token endpoint's own tests).
fn id_token_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&citizen_id::crypto::b64url_decode(payload).expect("base64url")).expect("JSON claims")
}

/// The `vot` a partner receives for a code issued to `client`'s session with `vtr`, or the
/// heading of the page the citizen is sent to instead.
async fn vot_for(app: &TestApp, client: &mut PasskeyClient, p: &TestPartner, vtr: &str) -> Result<String, String> {
    let ch = challenge();
    let page = client.get(&authorize_url(app, p, &[("vtr", vtr), ("code_challenge", &ch), ("code_challenge_method", "S256")])).await;
    let Some(code) = page.param("code") else { return Err(page.heading()) };
    let (status, tokens) = exchange(app, p, &code, &assertion(app, p)).await;
    assert_eq!(status, 200, "{tokens}");
    Ok(id_token_claims(tokens["id_token"].as_str().unwrap())["vot"].as_str().unwrap().to_string())
}

async fn a_citizen_adds_a_passkey_and_signs_in_with_it_both_ways(app: TestApp) {
    let citizen = app.citizen().await;
    let mut client = PasskeyClient::new(&app);
    client.sign_in_with_password(&app, &citizen).await;
    let page = client.get("/account/passkeys").await;
    assert!(page.contains("You have not added a passkey yet."), "{}", page.html);
    // The script's URL carries its content hash (assets are cached for a year as immutable).
    let script_url = citizen_id::web::assets::passkeys_js_url();
    assert!(page.contains(&format!("src=\"{script_url}\"")), "{}", page.html);
    let script = client.get(script_url).await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.contains("PublicKeyCredential"), "the passkey script is served at its versioned URL");
    let mut key = add_passkey(&app, &mut client, "My phone").await;
    let stored = app.state.db.passkeys_for_account(&citizen.id).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].id.as_str(), stored[0].name.as_str()), (key.id().as_str(), "My phone"));
    assert!(stored[0].backup_eligible && stored[0].backup_state, "backup flags are stored");
    assert_eq!((stored[0].sign_count, stored[0].last_used_at), (0, None));
    let page = client.get("/account/passkeys").await;
    assert!(page.contains("My phone") && page.contains("Not used yet"), "{}", page.html);
    app.wait_for_template(&citizen.email, "passkey-added").await;
    let notice = app.sink.messages().into_iter().find(|m| m.to == citizen.email && m.template_id == "passkey-added").unwrap();
    assert_eq!(notice.personalisation["passkey_name"], "My phone", "the notice names the passkey");

    // Usernameless (discoverable credential): no email typed.
    let mut fresh = PasskeyClient::new(&app);
    let (status, body) = sign_in(&app, &mut fresh, &mut key, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["next"], "/authorize/resume");
    let home = fresh.get("/authorize/resume").await;
    assert!(home.contains("Sign out"), "signed in: {}", home.html);
    let used = app.state.db.passkey(&key.id()).await.unwrap().unwrap();
    assert_eq!(used.sign_count, 1, "the signature counter is stored");
    assert!(used.last_used_at.is_some());

    // After typing the email: only that account's passkeys are asked for.
    let mut fresh = PasskeyClient::new(&app);
    let options = start_sign_in(&mut fresh, Some(&citizen.email)).await;
    assert_eq!(options["publicKey"]["allowCredentials"][0]["id"], key.id());
    assert_eq!(options["publicKey"]["userVerification"], "required");
    let credential = key.assert(&options, &Answer::from(&app.base));
    let (status, body) = fresh.json("/passkeys/signin/finish", &json!({ "credential": credential })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.state.db.passkey(&key.id()).await.unwrap().unwrap().sign_count, 2);
    let audit = sqlx::query("SELECT COUNT(*) FROM audit_log WHERE event = 'signin.succeeded' AND detail LIKE '%Cm%'")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(sqlx::Row::try_get::<i64, _>(&audit, 0).unwrap(), 2, "each passkey sign-in is audited as Cm");
}

/// `Cm` and `Cp.Cd` (README "Passkeys and vectors of trust"): the `vot` is the vector the
/// sign-in met (`VectorRequest::best_match`); a passkey meets only vectors that ask for `Cm`.
async fn partners_get_cm_only_when_they_ask_for_it(app: TestApp) {
    let p = app.partner("openid email", &["P0.Cm", "P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    app.state.db.save_consent(&citizen.id, &p.client_id, "openid email", 0).await.unwrap();
    let mut enrol = PasskeyClient::new(&app);
    enrol.sign_in_with_password(&app, &citizen).await;
    enrol.get("/account/passkeys").await;
    let mut key = add_passkey(&app, &mut enrol, "Laptop").await;
    assert_eq!(vot_for(&app, &mut enrol, &p, r#"["P0.Cp.Cd","P0.Cm"]"#).await.unwrap(), "P0.Cp.Cd", "a password session meets Cp.Cd");
    assert_eq!(vot_for(&app, &mut enrol, &p, r#"["P0.Cm"]"#).await.unwrap_err(), "Sign in", "Cp.Cd does not meet Cm");

    let mut client = PasskeyClient::new(&app);
    let (status, body) = sign_in(&app, &mut client, &mut key, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(vot_for(&app, &mut client, &p, r#"["P0.Cm"]"#).await.unwrap(), "P0.Cm");
    assert_eq!(vot_for(&app, &mut client, &p, r#"["P0.Cp.Cd","P0.Cm"]"#).await.unwrap(), "P0.Cm");
    assert_eq!(
        vot_for(&app, &mut client, &p, r#"["P0.Cp.Cd"]"#).await.unwrap_err(),
        "Sign in",
        "a passkey-only session is sent to sign in with password and code"
    );
    let page = client.get(&authorize_url(&app, &p, &[("vtr", r#"["P0.Cp.Cd"]"#), ("prompt", "none")])).await;
    assert_eq!(page.param("error").as_deref(), Some("sso_login_required"));
}

async fn a_citizen_can_drop_their_password_only_once_they_have_a_passkey(app: TestApp) {
    let citizen = app.citizen().await;
    let mut client = PasskeyClient::new(&app);
    client.sign_in_with_password(&app, &citizen).await;
    client.get("/account/passkeys").await;
    let page = client.post("/account/password/remove", &[]).await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert!(app.state.db.account(&citizen.id).await.unwrap().unwrap().password_hash.is_some());
    let mut key = add_passkey(&app, &mut client, "").await;
    assert_eq!(app.state.db.passkey(&key.id()).await.unwrap().unwrap().name, "Passkey", "a blank name gets a default");
    let page = client.get("/account/passkeys").await;
    assert!(page.contains("Stop using a password"));
    let page = client.post("/account/password/remove", &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.contains("You sign in with a passkey only."));
    assert!(app.state.db.account(&citizen.id).await.unwrap().unwrap().password_hash.is_none());
    app.wait_for_template(&citizen.email, "password-removed").await;

    // The password no longer works; the passkey does; the last passkey cannot be removed.
    let mut other = PasskeyClient::new(&app);
    other.get("/signin").await;
    let page = other.post("/signin", &[("email", &citizen.email), ("password", &citizen.password)]).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in(&app, &mut other, &mut key, Some(&citizen.email)).await.0, StatusCode::OK);
    let page = client.post("/account/passkeys/remove", &[("id", &key.id())]).await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.html);
    assert!(app.state.db.passkey(&key.id()).await.unwrap().is_some());
    assert!(!app.templates_sent_to(&citizen.email).contains(&"passkey-removed".to_string()), "nothing was removed");
}

async fn passwordless_registration_and_recovery(app: TestApp) {
    let email = "no.password@example.com";
    let mut client = PasskeyClient::new(&app);
    client.get("/register").await;
    client.post("/register", &[("email", email)]).await;
    let code = app.next_code(email).await;
    let page = client.post("/register/email-code", &[("code", &code)]).await;
    assert!(page.contains("Create a passkey instead of a password"), "{}", page.html);
    let page = client.get("/register/passkey-instead").await;
    assert_eq!(page.heading(), "Create a passkey instead of a password");
    let page = client.post("/register/passkey-instead", &[]).await;
    assert_eq!(page.heading(), "Enter your mobile phone number", "the mobile is still verified, for recovery");
    client.post("/register/mobile", &[("mobile", "07700 900777")]).await;
    let code = app.next_code("+447700900777").await;
    let page = client.post("/register/mobile-code", &[("code", &code)]).await;
    assert_eq!(page.heading(), "Create your passkey", "{}", page.html);
    let account = app.state.db.account_by_email(email).await.unwrap().expect("account written");
    assert!(account.password_hash.is_none());
    assert!(!page.contains("Sign out"), "not signed in before the passkey exists");
    let mut lost = add_passkey(&app, &mut client, "Old phone").await;
    assert!(app.templates_sent_to(email).iter().all(|t| t != "passkey-added"), "a new account's first passkey is part of registering");
    let home = client.get("/authorize/resume").await;
    assert!(home.contains("Sign out"), "the first passkey signs the citizen in");

    // The device is lost: email code, SMS code, then a new passkey instead of a password.
    let mut recovering = PasskeyClient::new(&app);
    recovering.get("/forgot-password").await;
    recovering.post("/forgot-password", &[("email", email)]).await;
    let code = app.next_code(email).await;
    recovering.post("/forgot-password/code", &[("code", &code)]).await;
    let code = app.next_code("+447700900777").await;
    let page = recovering.post("/forgot-password/sms-code", &[("code", &code)]).await;
    assert!(page.contains("Create a new passkey instead"), "{}", page.html);
    let page = recovering.get("/forgot-password/passkey").await;
    assert_eq!(page.heading(), "Create a new passkey");
    let mut new_key = add_passkey(&app, &mut recovering, "New phone").await;
    app.wait_for_template(email, "passkey-added").await;
    let home = client.get("/").await;
    assert!(!home.contains("Sign out"), "recovery signed out the other sessions");
    let mut fresh = PasskeyClient::new(&app);
    assert_eq!(sign_in(&app, &mut fresh, &mut new_key, None).await.0, StatusCode::OK);
    assert_eq!(app.state.db.passkeys_for_account(&account.id).await.unwrap().len(), 2);
    // The lost one still works until the citizen removes it; then it stops at once.
    fresh.get("/account/passkeys").await;
    let page = fresh.post("/account/passkeys/remove", &[("id", &lost.id())]).await;
    assert!(page.contains("The passkey has been removed."), "{}", page.html);
    app.wait_for_template(email, "passkey-removed").await;
    let notice = app.sink.messages().into_iter().find(|m| m.to == email && m.template_id == "passkey-removed").unwrap();
    assert_eq!(notice.personalisation["passkey_name"], "Old phone", "the notice names the removed passkey");
    assert_eq!(sign_in(&app, &mut PasskeyClient::new(&app), &mut lost, None).await.0, StatusCode::UNAUTHORIZED);
}

at_localhost_on_both_databases!(
    a_citizen_adds_a_passkey_and_signs_in_with_it_both_ways,
    partners_get_cm_only_when_they_ask_for_it,
    a_citizen_can_drop_their_password_only_once_they_have_a_passkey,
    passwordless_registration_and_recovery,
);
