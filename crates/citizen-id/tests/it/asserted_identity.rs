//! Single sign-on between partners with `asserted_login_identity` (Federation spec Table 1):
//! partner 1 signs a JWT naming its ID token's `jti`, partner 2 (which accepts partner 1's
//! assertions) sends it with `prompt=none` from a browser that has never seen Citizen ID, and
//! partner 2's request completes with no page. Every rule's failure gets the exact Table 5
//! error. The assertion completes that one request and nothing else: it is no session.

use serde_json::{Value, json};

use crate::on_both_databases;
use crate::support::protocol::{assertion, assertion_with, authorize_url, challenge, code, exchange, signed_in};
use crate::support::web::{Page, WebClient};
use crate::support::{Citizen, TestApp, TestPartner};
use citizen_id::crypto::random_token;

/// Two partners, a citizen signed in (in some browser) to partner 1 with an ID token from it,
/// and consent already given to partner 2.
struct Sso {
    one: TestPartner,
    two: TestPartner,
    citizen: Citizen,
    /// Partner 1's ID token claims.
    id_token: Value,
}

async fn signed_in_to_partner_one(app: &TestApp) -> Sso {
    let one = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let two = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    let mut web = signed_in(app, &one, &citizen).await;
    let code = code(app, &mut web, &one, &[]).await;
    let (status, tokens) = exchange(app, &one, &code, &assertion(app, &one)).await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = app.state.keys.verify(tokens["id_token"].as_str().unwrap()).unwrap();
    app.state.db.save_consent(&citizen.id, &two.client_id, "openid email", 0).await.unwrap();
    app.allow_sso(&two, &one).await;
    Sso { one, two, citizen, id_token }
}

fn now() -> i64 {
    citizen_id::clock::now_secs()
}

/// What partner 1 puts in an assertion for its ID token `code`, with a fresh `jti`.
fn claims(sso: &Sso, code: &str) -> Value {
    json!({ "iss": sso.one.client_id, "code": code, "jti": random_token(12), "iat": now(), "exp": now() + 60 })
}

/// The usual assertion: partner 1 vouching for its own ID token.
fn good_assertion(sso: &Sso) -> String {
    assertion_with(&sso.one, claims(sso, sso.id_token["jti"].as_str().unwrap()))
}

/// Partner 2's authorization request (PKCE, `prompt=none` unless overridden) carrying `jwt`,
/// from a browser with no cookies.
async fn partner_two_with(app: &TestApp, sso: &Sso, jwt: &str, prompt: &str) -> Page {
    let challenge = challenge();
    let extra = [("prompt", prompt), ("asserted_login_identity", jwt), ("code_challenge", &challenge), ("code_challenge_method", "S256")];
    WebClient::new(&app.base).get(&authorize_url(app, &sso.two, &extra)).await
}

/// The `error` partner 2 gets back for `jwt` with `prompt=none`, checking that the
/// `error_description` names the rule (contains `why`).
async fn error_for(app: &TestApp, sso: &Sso, jwt: &str, why: &str) -> Option<String> {
    let page = partner_two_with(app, sso, jwt, "none").await;
    assert!(page.left_to.is_some(), "prompt=none never shows a page: {}", page.heading());
    let description = page.param("error_description").unwrap_or_default();
    assert!(description.contains(why), "{description:?} does not say {why:?}");
    page.param("error")
}

async fn signs_in_to_a_second_partner_with_no_interaction(app: TestApp) {
    let sso = signed_in_to_partner_one(&app).await;
    let mut fresh = WebClient::new(&app.base);
    let challenge = challenge();
    let jwt = good_assertion(&sso);
    let extra = [("prompt", "none"), ("asserted_login_identity", jwt.as_str()), ("code_challenge", &challenge), ("code_challenge_method", "S256")];
    let page = fresh.get(&authorize_url(&app, &sso.two, &extra)).await;
    assert!(page.html.is_empty(), "no page is shown");
    assert_eq!(page.param("state").as_deref(), Some("state-123"));
    let code = page.param("code").unwrap_or_else(|| panic!("no code: {:?}", page.left_to));
    let (status, tokens) = exchange(&app, &sso.two, &code, &assertion(&app, &sso.two)).await;
    assert_eq!(status, 200, "{tokens}");
    let id = app.state.keys.verify(tokens["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id["sub"], sso.citizen.id.as_str());
    assert_eq!(id["aud"], sso.two.client_id.as_str());
    // The original sign-in carries over: its time and its credentials.
    assert_eq!(id["auth_time"], sso.id_token["auth_time"]);
    assert_eq!(id["vot"], "P0.Cp.Cd");
    assert_ne!(id["jti"], sso.id_token["jti"]);

    // The assertion served that request only: the fresh browser is not signed in.
    let page = fresh.get(&authorize_url(&app, &sso.two, &[("prompt", "none")])).await;
    assert_eq!(page.param("error").as_deref(), Some("sso_login_required"), "{:?}", page.left_to);
    let row = sqlx::query("SELECT detail FROM audit_log WHERE event = 'signin.asserted_identity' AND account_id = $1")
        .bind(&sso.citizen.id)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    let detail: String = sqlx::Row::try_get(&row, 0).unwrap();
    assert!(detail.contains(&sso.one.client_id) && !detail.contains(&sso.citizen.email), "{detail}");

    // One use only: the same assertion again is a replay.
    assert_eq!(error_for(&app, &sso, &jwt, "used before").await.as_deref(), Some("invalid_request"));

    // Consent rules still apply: a third partner the citizen never agreed to share with.
    let three = app.partner("openid email", &["P0.Cp.Cd"]).await;
    app.allow_sso(&three, &sso.one).await;
    let jwt = good_assertion(&sso);
    let extra = [("prompt", "none"), ("asserted_login_identity", jwt.as_str()), ("code_challenge", &challenge), ("code_challenge_method", "S256")];
    let page = WebClient::new(&app.base).get(&authorize_url(&app, &three, &extra)).await;
    assert_eq!(page.param("error").as_deref(), Some("consent_required"));
}

async fn refuses_malformed_expired_and_wrongly_signed_assertions(app: TestApp) {
    let sso = signed_in_to_partner_one(&app).await;
    let jti = sso.id_token["jti"].as_str().unwrap().to_string();
    let with = |changes: Value| {
        let mut c = claims(&sso, &jti);
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() { c.as_object_mut().unwrap().remove(k); } else { c[k] = v.clone(); }
        }
        c
    };
    let expired = assertion_with(&sso.one, with(json!({ "iat": now() - 180, "exp": now() - 120 })));
    assert_eq!(error_for(&app, &sso, &expired, "expired").await.as_deref(), Some("invalid_request"), "expired");
    let too_long = assertion_with(&sso.one, with(json!({ "exp": now() + 300 })));
    assert_eq!(error_for(&app, &sso, &too_long, "60 seconds").await.as_deref(), Some("invalid_request"), "exp more than 60 s ahead");
    for missing in ["iat", "jti", "code", "exp", "iss"] {
        let jwt = assertion_with(&sso.one, with(json!({ missing: null })));
        assert_eq!(error_for(&app, &sso, &jwt, &format!("no {missing}")).await.as_deref(), Some("invalid_request"), "no {missing}");
    }
    // iss says partner 1; partner 2's key (or anyone else's) signed it.
    let one_keys = app.state.db.partner(&sso.one.client_id).await.unwrap().unwrap().public_keys;
    let two_keys = app.state.db.partner(&sso.two.client_id).await.unwrap().unwrap().public_keys;
    assert_ne!(one_keys, two_keys, "the partners need their own keys for this test");
    let by_two = assertion_with(&sso.two, with(json!({})));
    assert_eq!(error_for(&app, &sso, &by_two, "not signed by a key registered").await.as_deref(), Some("invalid_request"), "signed by partner 2");
    let (der, _) = citizen_id::oidc::keys::generate_rsa_pkcs8().unwrap();
    let stranger = citizen_id::web::demo::DemoPartner::from_pkcs8(&sso.one.client_id, &der).unwrap();
    let by_stranger = citizen_id::oidc::keys::sign_with(&stranger.key, &stranger.kid, &with(json!({}))).unwrap();
    assert_eq!(error_for(&app, &sso, &by_stranger, "not signed by a key registered").await.as_deref(), Some("invalid_request"), "signed by an unregistered key");
    let unsigned = crate::support::protocol::forged("none", &with(json!({})));
    assert_eq!(error_for(&app, &sso, &unsigned, "RS512").await.as_deref(), Some("invalid_request"), "alg none");
    let unknown_issuer = assertion_with(&sso.one, with(json!({ "iss": "no-such-client" })));
    assert_eq!(error_for(&app, &sso, &unknown_issuer, "not signed by a key registered").await.as_deref(), Some("invalid_request"), "unknown iss");
    // Bad assertions are errors even when a page could be shown.
    let page = partner_two_with(&app, &sso, &expired, "").await;
    assert_eq!(page.param("error").as_deref(), Some("invalid_request"));
    // None of this signed anyone in, and the good assertion still works.
    let page = partner_two_with(&app, &sso, &good_assertion(&sso), "none").await;
    assert!(page.param("code").is_some(), "{:?}", page.left_to);
}

async fn refuses_assertions_naming_an_unusable_id_token(app: TestApp) {
    let sso = signed_in_to_partner_one(&app).await;
    let jti = sso.id_token["jti"].as_str().unwrap().to_string();
    let unknown = assertion_with(&sso.one, claims(&sso, "no-such-id-token"));
    assert_eq!(error_for(&app, &sso, &unknown, "unknown, expired or revoked").await.as_deref(), Some("sso_login_required"), "unknown jti");
    // A partner that partner 2 accepts cannot vouch for an ID token of another partner's.
    let three = app.partner("openid email", &["P0.Cp.Cd"]).await;
    app.allow_sso(&sso.two, &three).await;
    let mut theirs = claims(&sso, &jti);
    theirs["iss"] = json!(three.client_id);
    let theirs = assertion_with(&three, theirs);
    assert_eq!(error_for(&app, &sso, &theirs, "unknown, expired or revoked").await.as_deref(), Some("sso_login_required"), "ID token of another partner");
    // Without prompt=none an SSO failure is no error: the citizen is asked to sign in.
    let page = partner_two_with(&app, &sso, &assertion_with(&sso.one, claims(&sso, "no-such-id-token")), "").await;
    assert_eq!(page.heading(), "Sign in");

    // An ID token past its expiry.
    sqlx::query("UPDATE authorization_codes SET id_token_expires_at = $1 WHERE id_token_jti = $2")
        .bind(citizen_id::clock::now_ms() - 1000)
        .bind(&jti)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(error_for(&app, &sso, &good_assertion(&sso), "unknown, expired or revoked").await.as_deref(), Some("sso_login_required"), "expired ID token");
    sqlx::query("UPDATE authorization_codes SET id_token_expires_at = $1 WHERE id_token_jti = $2")
        .bind(citizen_id::clock::now_ms() + 3_600_000)
        .bind(&jti)
        .execute(app.state.db.pool())
        .await
        .unwrap();

    let page = partner_two_with(&app, &sso, &good_assertion(&sso), "none").await;
    assert!(page.param("code").is_some(), "the ID token is good again: {:?}", page.left_to);

    // The citizen signed out everywhere (or timed out): no session, no SSO.
    sqlx::query("DELETE FROM sessions WHERE account_id = $1").bind(&sso.citizen.id).execute(app.state.db.pool()).await.unwrap();
    assert_eq!(error_for(&app, &sso, &good_assertion(&sso), "no longer signed in").await.as_deref(), Some("sso_login_required"), "no session");
}

/// The account-takeover finding: partner 1 (or anyone holding one of its ID tokens' `jti` and
/// its key) sends an assertion from its own browser. The request completes for partner 2, but
/// the browser gets no Citizen ID session: no account pages, no data download, no passkey
/// enrolment, no sign-in to another partner, not even while the request is still open.
async fn an_assertion_opens_nothing_but_its_own_request(app: TestApp) {
    let sso = signed_in_to_partner_one(&app).await;
    let three = app.partner("openid email", &["P0.Cp.Cd"]).await;
    app.state.db.save_consent(&sso.citizen.id, &three.client_id, "openid email", 0).await.unwrap();
    let mut attacker = WebClient::new(&app.base);
    // Partner 2 without consent yet: the request stops at the consent page, still open.
    app.state.db.save_consent(&sso.citizen.id, &sso.two.client_id, "openid", 0).await.unwrap();
    let jwt = good_assertion(&sso);
    let page = attacker.get(&authorize_url(&app, &sso.two, &[("asserted_login_identity", jwt.as_str())])).await;
    assert_eq!(page.heading(), "Share your details with Test partner", "the request may complete: {}", page.heading());
    for path in ["/settings", "/settings/email", "/settings/mobile", "/settings/password", "/settings/download", "/settings/delete", "/account/passkeys"] {
        let page = attacker.get(path).await;
        assert_eq!(page.heading(), "Sign in", "{path} needs a sign-in of this browser's own");
        assert!(!page.contains(&sso.citizen.email), "{path} shows nothing of the citizen");
    }
    let passkey = reqwest::Client::new()
        .post(app.url("/passkeys/register/start"))
        .header("cookie", format!("cid_session={}", attacker.cookie("cid_session").unwrap()))
        .header("x-csrf-token", csrf_of(&page_of(&mut attacker, "/signin").await))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_ne!(passkey.status(), 200, "no passkey can be enrolled");
    // Another partner, with consent given and prompt=none: not signed in.
    let page = attacker.get(&authorize_url(&app, &three, &[("prompt", "none")])).await;
    assert_eq!(page.param("error").as_deref(), Some("sso_login_required"), "{:?}", page.left_to);
    // And the first request, replaced by that one, is gone with its assertion.
    let page = attacker.get("/consent").await;
    assert_ne!(page.heading(), "Share your details with Test partner");
}

async fn page_of(web: &mut WebClient, path: &str) -> crate::support::web::Page {
    web.get(path).await
}

fn csrf_of(page: &crate::support::web::Page) -> String {
    page.html.split("name=\"csrf_token\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or_default().to_string()
}

/// Login CSRF: an assertion for citizen A reaching a browser already signed in as citizen B
/// never switches it to A. With `prompt=none` partner 2 hears `sso_login_required`; with a
/// page allowed the citizen is asked to sign in; B stays signed in either way.
async fn an_assertion_never_switches_a_signed_in_browser(app: TestApp) {
    let sso = signed_in_to_partner_one(&app).await;
    let other = app.citizen().await;
    app.state.db.save_consent(&other.id, &sso.two.client_id, "openid email", 0).await.unwrap();
    let mut victim = crate::support::protocol::signed_in(&app, &sso.two, &other).await;
    let challenge = challenge();
    let jwt = good_assertion(&sso);
    let extra = [("prompt", "none"), ("asserted_login_identity", jwt.as_str()), ("code_challenge", &challenge), ("code_challenge_method", "S256")];
    let page = victim.get(&authorize_url(&app, &sso.two, &extra)).await;
    assert_eq!(page.param("error").as_deref(), Some("sso_login_required"), "{:?}", page.left_to);
    let jwt = good_assertion(&sso);
    let page = victim.get(&authorize_url(&app, &sso.two, &[("asserted_login_identity", jwt.as_str())])).await;
    assert_eq!(page.heading(), "Sign in", "asked to sign in, not switched");
    let page = victim.get("/settings").await;
    assert!(page.contains(&other.email) && !page.contains(&sso.citizen.email), "still the same citizen");
}

/// SSO pairing (`single-sign-on.md`: partners control who they share SSO with, and NHS login
/// sets it up): a partner accepts assertions only from the partners registered for it, and
/// never from itself.
async fn only_paired_partners_assertions_are_accepted(app: TestApp) {
    let sso = signed_in_to_partner_one(&app).await;
    let four = app.partner("openid email", &["P0.Cp.Cd"]).await;
    app.state.db.save_consent(&sso.citizen.id, &four.client_id, "openid email", 0).await.unwrap();
    let challenge = challenge();
    let to_four = |jwt: String| {
        authorize_url(&app, &four, &[("prompt", "none"), ("asserted_login_identity", &jwt), ("code_challenge", &challenge), ("code_challenge_method", "S256")])
    };
    let page = WebClient::new(&app.base).get(&to_four(good_assertion(&sso))).await;
    assert_eq!(page.param("error").as_deref(), Some("sso_login_required"), "not paired: {:?}", page.left_to);
    assert!(page.param("error_description").unwrap_or_default().contains("does not accept single sign-on"));
    // Partner 1 asserting to itself.
    let jwt = good_assertion(&sso);
    let extra = [("prompt", "none"), ("asserted_login_identity", jwt.as_str()), ("code_challenge", &challenge), ("code_challenge_method", "S256")];
    let page = WebClient::new(&app.base).get(&authorize_url(&app, &sso.one, &extra)).await;
    assert_eq!(page.param("error").as_deref(), Some("sso_login_required"), "to itself: {:?}", page.left_to);
    // Without prompt=none, the normal sign-in.
    let jwt = good_assertion(&sso);
    let page = WebClient::new(&app.base).get(&authorize_url(&app, &four, &[("asserted_login_identity", jwt.as_str())])).await;
    assert_eq!(page.heading(), "Sign in");
    // Paired, the same assertion kind works.
    app.allow_sso(&four, &sso.one).await;
    let page = WebClient::new(&app.base).get(&to_four(good_assertion(&sso))).await;
    assert!(page.param("code").is_some(), "{:?}", page.left_to);
}

on_both_databases!(
    an_assertion_opens_nothing_but_its_own_request,
    an_assertion_never_switches_a_signed_in_browser,
    only_paired_partners_assertions_are_accepted,
    signs_in_to_a_second_partner_with_no_interaction,
    refuses_malformed_expired_and_wrongly_signed_assertions,
    refuses_assertions_naming_an_unusable_id_token,
);
