//! The ceremony rules, broken one at a time with the software authenticator: each refusal is
//! checked at the JSON endpoint a browser would call.

use reqwest::StatusCode;
use serde_json::json;

use super::client::PasskeyClient;
use super::softkey::{Answer, SoftKey};
use super::{add_passkey, at_localhost_on_both_databases, sign_in, start_sign_in};
use crate::support::TestApp;

/// A signed-in citizen with one passkey.
async fn citizen_with_passkey(app: &TestApp) -> (crate::support::Citizen, SoftKey) {
    let citizen = app.citizen().await;
    let mut client = PasskeyClient::new(app);
    client.sign_in_with_password(app, &citizen).await;
    client.get("/account/passkeys").await;
    let key = add_passkey(app, &mut client, "Phone").await;
    (citizen, key)
}

async fn a_replayed_assertion_is_refused(app: TestApp) {
    let (_, mut key) = citizen_with_passkey(&app).await;
    let mut client = PasskeyClient::new(&app);
    let options = start_sign_in(&mut client, None).await;
    let body = json!({ "credential": key.assert(&options, &Answer::from(&app.base)) });
    assert_eq!(client.json("/passkeys/signin/finish", &body).await.0, StatusCode::OK);
    client.get("/").await; // the new session's CSRF token
    let (status, answer) = client.json("/passkeys/signin/finish", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the ceremony is single use: {answer}");

    // Replayed into a new ceremony (another challenge), and from another browser.
    start_sign_in(&mut client, None).await;
    assert_eq!(client.json("/passkeys/signin/finish", &body).await.0, StatusCode::UNAUTHORIZED);
    let mut attacker = PasskeyClient::new(&app);
    start_sign_in(&mut attacker, None).await;
    assert_eq!(attacker.json("/passkeys/signin/finish", &body).await.0, StatusCode::UNAUTHORIZED);

    // The store takes a ceremony at most once.
    let db = &app.state.db;
    db.insert_ceremony("h", "signin", None, "{}", citizen_id::clock::now_ms() + 60_000).await.unwrap();
    assert!(db.take_ceremony("h", citizen_id::clock::now_ms()).await.unwrap().is_some());
    assert!(db.take_ceremony("h", citizen_id::clock::now_ms()).await.unwrap().is_none());
}

async fn a_response_for_another_origin_is_refused(app: TestApp) {
    let (citizen, mut key) = citizen_with_passkey(&app).await;
    let evil = Answer::from("https://citizen-id.evil.example");
    let mut client = PasskeyClient::new(&app);
    let options = start_sign_in(&mut client, None).await;
    let body = json!({ "credential": key.assert(&options, &evil) });
    assert_eq!(client.json("/passkeys/signin/finish", &body).await.0, StatusCode::UNAUTHORIZED);
    // The same answer from our own origin would have been accepted.
    let options = start_sign_in(&mut client, None).await;
    let body = json!({ "credential": key.assert(&options, &Answer::from(&app.base)) });
    assert_eq!(client.json("/passkeys/signin/finish", &body).await.0, StatusCode::OK);

    // Registration too.
    let mut enrol = PasskeyClient::new(&app);
    enrol.sign_in_with_password(&app, &citizen).await;
    enrol.get("/account/passkeys").await;
    let (_, options) = enrol.json("/passkeys/register/start", &json!({})).await;
    let (_, credential) = SoftKey::register(&options, &evil);
    let (status, _) = enrol.json("/passkeys/register/finish", &json!({ "credential": credential })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.state.db.passkeys_for_account(&citizen.id).await.unwrap().len(), 1);
}

async fn an_expired_ceremony_is_refused(app: TestApp) {
    let (_, mut key) = citizen_with_passkey(&app).await;
    let mut client = PasskeyClient::new(&app);
    let options = start_sign_in(&mut client, None).await;
    let db = app.state.db.pool();
    let expiry: i64 = sqlx::Row::try_get(&sqlx::query("SELECT MAX(expires_at) FROM webauthn_ceremonies").fetch_one(db).await.unwrap(), 0).unwrap();
    let lifetime = expiry - citizen_id::clock::now_ms();
    assert!(lifetime > 4 * 60_000 && lifetime <= 5 * 60_000, "ceremonies live five minutes, not {lifetime} ms");
    sqlx::query("UPDATE webauthn_ceremonies SET expires_at = 1").execute(db).await.unwrap();
    let body = json!({ "credential": key.assert(&options, &Answer::from(&app.base)) });
    let (status, answer) = client.json("/passkeys/signin/finish", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let left: i64 = sqlx::Row::try_get(&sqlx::query("SELECT COUNT(*) FROM webauthn_ceremonies").fetch_one(db).await.unwrap(), 0).unwrap();
    assert_eq!(left, 0, "the expired ceremony was consumed, not kept");
}

async fn a_credential_of_another_account_is_refused(app: TestApp) {
    let (alice, mut alice_key) = citizen_with_passkey(&app).await;
    let (bob, mut bob_key) = citizen_with_passkey(&app).await;

    // Alice's email typed, Bob's passkey offered.
    let mut client = PasskeyClient::new(&app);
    let options = start_sign_in(&mut client, Some(&alice.email)).await;
    let body = json!({ "credential": bob_key.assert(&options, &Answer::from(&app.base)) });
    assert_eq!(client.json("/passkeys/signin/finish", &body).await.0, StatusCode::UNAUTHORIZED);

    // Usernameless, Alice's passkey claiming to be Bob (the user handle names the account).
    let options = start_sign_in(&mut client, None).await;
    let bob_handle = citizen_id::passkeys::user_handle(&bob.id);
    let body = json!({ "credential": alice_key.assert_as(&options, &Answer::from(&app.base), bob_handle.as_bytes()) });
    assert_eq!(client.json("/passkeys/signin/finish", &body).await.0, StatusCode::UNAUTHORIZED);

    // An unknown email answers like a known one, and no passkey can satisfy it.
    let options = start_sign_in(&mut client, Some("nobody@example.com")).await;
    let body = json!({ "credential": alice_key.assert(&options, &Answer::from(&app.base)) });
    assert_eq!(client.json("/passkeys/signin/finish", &body).await.0, StatusCode::UNAUTHORIZED);

    // Bob cannot remove Alice's passkey.
    let mut bobs = PasskeyClient::new(&app);
    bobs.sign_in_with_password(&app, &bob).await;
    bobs.get("/account/passkeys").await;
    bobs.post("/account/passkeys/remove", &[("id", &alice_key.id())]).await;
    assert!(app.state.db.passkey(&alice_key.id()).await.unwrap().is_some());
    assert_eq!(sign_in(&app, &mut client, &mut alice_key, Some(&alice.email)).await.0, StatusCode::OK);
}

async fn user_verification_is_required(app: TestApp) {
    let (citizen, mut key) = citizen_with_passkey(&app).await;
    let mut client = PasskeyClient::new(&app);
    let options = start_sign_in(&mut client, Some(&citizen.email)).await;
    let body = json!({ "credential": key.assert(&options, &Answer::from(&app.base).unverified()) });
    assert_eq!(client.json("/passkeys/signin/finish", &body).await.0, StatusCode::UNAUTHORIZED);
    let options = start_sign_in(&mut client, None).await;
    let body = json!({ "credential": key.assert(&options, &Answer::from(&app.base).unverified()) });
    assert_eq!(client.json("/passkeys/signin/finish", &body).await.0, StatusCode::UNAUTHORIZED);

    let mut enrol = PasskeyClient::new(&app);
    enrol.sign_in_with_password(&app, &citizen).await;
    enrol.get("/account/passkeys").await;
    let (_, options) = enrol.json("/passkeys/register/start", &json!({})).await;
    let (_, credential) = SoftKey::register(&options, &Answer::from(&app.base).unverified());
    assert_eq!(enrol.json("/passkeys/register/finish", &json!({ "credential": credential })).await.0, StatusCode::UNAUTHORIZED);
}

async fn a_removed_passkey_stops_working_at_once(app: TestApp) {
    let (citizen, mut key) = citizen_with_passkey(&app).await;
    let mut attempt = PasskeyClient::new(&app);
    let options = start_sign_in(&mut attempt, Some(&citizen.email)).await;
    // Removed between the ceremony's start and its finish.
    let mut owner = PasskeyClient::new(&app);
    owner.sign_in_with_password(&app, &citizen).await;
    owner.get("/account/passkeys").await;
    let page = owner.post("/account/passkeys/remove", &[("id", &key.id())]).await;
    assert!(page.contains("The passkey has been removed."), "{}", page.html);
    let body = json!({ "credential": key.assert(&options, &Answer::from(&app.base)) });
    assert_eq!(attempt.json("/passkeys/signin/finish", &body).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in(&app, &mut PasskeyClient::new(&app), &mut key, None).await.0, StatusCode::UNAUTHORIZED);
}

/// The options after typing an email look alike whether or not it has an account with
/// passkeys: the same fields, and a stable list of credential ids (made up when none exist).
async fn the_email_step_does_not_reveal_accounts(app: TestApp) {
    let (with_passkey, _) = citizen_with_passkey(&app).await;
    let without = app.citizen().await;
    let mut client = PasskeyClient::new(&app);
    let shape = |v: &serde_json::Value| {
        let mut keys: Vec<String> = v["publicKey"].as_object().unwrap().keys().cloned().collect();
        keys.extend(v.as_object().unwrap().keys().cloned());
        keys.sort();
        keys
    };
    let real = start_sign_in(&mut client, Some(&with_passkey.email)).await;
    for email in [without.email.as_str(), "nobody.at.all@example.com"] {
        let first = start_sign_in(&mut client, Some(email)).await;
        let again = start_sign_in(&mut client, Some(email)).await;
        assert_eq!(shape(&first), shape(&real), "{first} vs {real}");
        assert_eq!(first["publicKey"]["allowCredentials"], again["publicKey"]["allowCredentials"], "stable per email");
        assert_ne!(first["publicKey"]["challenge"], again["publicKey"]["challenge"]);
    }
}

async fn json_endpoints_need_the_csrf_token_and_our_origin(app: TestApp) {
    let mut client = PasskeyClient::new(&app);
    client.get("/signin").await;
    let http = reqwest::Client::new();
    let res = http.post(app.url("/passkeys/signin/start")).json(&json!({})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "no token");
    let (status, _) = client.json("/passkeys/signin/start", &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = client.json("/passkeys/register/start", &json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "adding a passkey needs a signed-in citizen or a journey");
}

at_localhost_on_both_databases!(
    a_replayed_assertion_is_refused,
    a_response_for_another_origin_is_refused,
    an_expired_ceremony_is_refused,
    a_credential_of_another_account_is_refused,
    user_verification_is_required,
    a_removed_passkey_stops_working_at_once,
    the_email_step_does_not_reveal_accounts,
    json_endpoints_need_the_csrf_token_and_our_origin,
);
