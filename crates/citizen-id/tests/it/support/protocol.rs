//! Raw protocol helpers for negative tests: a signed-in browser with consent already given,
//! a code for a partner, token requests with hand-made client assertions.

use serde_json::{Value, json};

use super::flows::sign_in;
use super::web::WebClient;
use super::{Citizen, TestApp, TestPartner};
use citizen_id::crypto::{b64url, random_token};

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
pub const VERIFIER: &str = "a-pkce-verifier-that-is-long-enough-to-be-valid-0123456789";

pub fn challenge() -> String {
    citizen_id::oidc::token::pkce_s256(VERIFIER)
}

pub fn authorize_url(app: &TestApp, p: &TestPartner, extra: &[(&str, &str)]) -> String {
    let mut params: Vec<(String, String)> = [
        ("client_id", p.client_id.as_str()),
        ("redirect_uri", p.redirect_uri.as_str()),
        ("response_type", "code"),
        ("scope", "openid email"),
        ("state", "state-123"),
        ("nonce", "nonce-456"),
        ("vtr", r#"["P0.Cp.Cd"]"#),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        params.retain(|(name, _)| name != k);
        if !v.is_empty() {
            params.push((k.to_string(), v.to_string()));
        }
    }
    let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    format!("{}/authorize?{query}", app.base)
}

/// A browser signed in as `citizen` who has already agreed to share with `p`.
pub async fn signed_in(app: &TestApp, p: &TestPartner, citizen: &Citizen) -> WebClient {
    app.state.db.save_consent(&citizen.id, &p.client_id, "openid email profile phone", 0).await.unwrap();
    let mut web = WebClient::new(&app.base);
    sign_in(app, &mut web, citizen).await;
    web
}

/// An authorization code for `p` (with a PKCE challenge unless `extra` overrides).
pub async fn code(app: &TestApp, web: &mut WebClient, p: &TestPartner, extra: &[(&str, &str)]) -> String {
    let mut all = vec![("code_challenge", challenge()), ("code_challenge_method", "S256".to_string())];
    all.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = web.get(&authorize_url(app, p, &refs)).await;
    page.param("code").unwrap_or_else(|| panic!("no code: {} {:?}", page.heading(), page.left_to))
}

pub fn assertion(app: &TestApp, p: &TestPartner) -> String {
    p.signer.client_assertion(&format!("{}/token", app.base)).unwrap()
}

/// An assertion with chosen claims, signed by `p`'s key.
pub fn assertion_with(p: &TestPartner, claims: Value) -> String {
    citizen_id::oidc::keys::sign_with(&p.signer.key, &p.signer.kid, &claims).unwrap()
}

pub fn claims(app: &TestApp, p: &TestPartner) -> Value {
    let now = citizen_id::clock::now_secs();
    json!({ "iss": p.client_id, "sub": p.client_id, "aud": format!("{}/token", app.base), "jti": random_token(12), "iat": now, "exp": now + 60 })
}

/// An unsigned (`alg: none`) or HMAC-signed assertion: both must be refused.
pub fn forged(alg: &str, claims: &Value) -> String {
    let header = b64url(json!({ "alg": alg, "typ": "JWT" }).to_string().as_bytes());
    let body = b64url(claims.to_string().as_bytes());
    let sig = if alg == "none" { String::new() } else { b64url(b"not-a-real-mac-but-long-enough-to-look-like-one") };
    format!("{header}.{body}.{sig}")
}

pub async fn token(app: &TestApp, form: &[(&str, &str)]) -> (u16, Value) {
    let res = reqwest::Client::new().post(app.url("/token")).form(form).send().await.unwrap();
    let status = res.status().as_u16();
    assert_eq!(res.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    (status, res.json().await.unwrap_or(Value::Null))
}

pub async fn exchange(app: &TestApp, p: &TestPartner, code: &str, assertion: &str) -> (u16, Value) {
    token(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &p.redirect_uri),
            ("code_verifier", VERIFIER),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ],
    )
    .await
}

pub async fn userinfo(app: &TestApp, access_token: &str) -> (u16, Option<String>) {
    let res = reqwest::Client::new().get(app.url("/userinfo")).bearer_auth(access_token).send().await.unwrap();
    let www = res.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(String::from);
    (res.status().as_u16(), www)
}
