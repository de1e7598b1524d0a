//! The sandpit's sample partner service (F15). It is a separate party in spirit: it keeps its
//! own state in its own cookie and talks to the provider over HTTP (token and userinfo), with
//! private_key_jwt exactly as a real partner would.

use std::sync::Arc;

use aws_lc_rs::rsa::KeyPair;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::middleware::CspNonce;
use super::pages::{DemoPage, PageContext, render};
use super::session::{cookie_header, read_cookie, with_cookie};
use crate::clock;
use crate::crypto::{b64url, b64url_decode, random_token, sha256_hex};
use crate::oidc::keys::sign_with;
use crate::state::AppState;

#[derive(Clone)]
pub struct DemoPartner {
    pub client_id: String,
    pub kid: String,
    pub key: Arc<KeyPair>,
}

impl DemoPartner {
    pub fn from_pkcs8(client_id: &str, der: &[u8]) -> anyhow::Result<DemoPartner> {
        let key = KeyPair::from_pkcs8(der).map_err(|e| anyhow::anyhow!("demo partner key: {e}"))?;
        Ok(DemoPartner { client_id: client_id.to_string(), kid: "demo-1".into(), key: Arc::new(key) })
    }

    /// A private_key_jwt client assertion for `audience` (the token endpoint).
    pub fn client_assertion(&self, audience: &str) -> anyhow::Result<String> {
        let now = clock::now_secs();
        let claims = json!({ "iss": self.client_id, "sub": self.client_id, "aud": audience, "jti": random_token(16), "iat": now, "exp": now + 60 });
        sign_with(&self.key, &self.kid, &claims)
    }
}

/// What the sample partner remembers between the button and the callback.
#[derive(Serialize, Deserialize)]
struct DemoState {
    state: String,
    nonce: String,
    verifier: String,
}

const COOKIE: &str = "cid_demo";

fn page(headers_nonce: Option<axum::Extension<CspNonce>>) -> PageContext {
    PageContext { nonce: headers_nonce.map(|n| n.0.value()).unwrap_or_default(), csrf: String::new(), signed_in: false }
}

pub async fn get_demo(State(state): State<AppState>, nonce: Option<axum::Extension<CspNonce>>) -> Response {
    if state.demo.is_none() {
        return StatusCode::NOT_FOUND.into_response();
    }
    render(StatusCode::OK, &DemoPage { page: page(nonce), claims: None, error: None })
}

#[derive(Deserialize)]
pub struct StartForm {
    vtr: String,
}

pub async fn post_start(State(state): State<AppState>, axum::Form(form): axum::Form<StartForm>) -> Response {
    let Some(demo) = &state.demo else { return StatusCode::NOT_FOUND.into_response() };
    let vtr = match form.vtr.as_str() {
        v @ ("P0.Cp.Cd" | "P5.Cp.Cd" | "P9.Cp.Cd") => v,
        _ => "P0.Cp.Cd",
    };
    let s = DemoState { state: random_token(16), nonce: random_token(16), verifier: random_token(32) };
    let challenge = b64url(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.verifier.as_bytes()).as_ref());
    let mut url = url::Url::parse(&state.settings.endpoint("/authorize")).expect("issuer is a URL");
    url.query_pairs_mut()
        .append_pair("client_id", &demo.client_id)
        .append_pair("redirect_uri", &state.settings.endpoint("/demo/callback"))
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile email phone")
        .append_pair("state", &s.state)
        .append_pair("nonce", &s.nonce)
        .append_pair("vtr", &format!("[\"{vtr}\"]"))
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let cookie = b64url(serde_json::to_string(&s).expect("serialisable").as_bytes());
    with_cookie(Redirect::to(url.as_str()).into_response(), cookie_header(&state.settings, COOKIE, &cookie, 600))
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub async fn get_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    nonce: Option<axum::Extension<CspNonce>>,
    Query(cb): Query<Callback>,
) -> Response {
    let Some(demo) = state.demo.clone() else { return StatusCode::NOT_FOUND.into_response() };
    let page = page(nonce);
    let show_error = |msg: String| render(StatusCode::OK, &DemoPage { page: page.clone(), claims: None, error: Some(msg) });
    if let Some(error) = cb.error {
        return show_error(format!("{error}: {}", cb.error_description.unwrap_or_default()));
    }
    let saved = read_cookie(&headers, COOKIE)
        .and_then(b64url_decode)
        .and_then(|b| serde_json::from_slice::<DemoState>(&b).ok());
    let (Some(saved), Some(code)) = (saved, cb.code) else { return show_error("The sign-in had expired. Start again.".into()) };
    if cb.state.as_deref() != Some(saved.state.as_str()) {
        return show_error("The state did not match: the response was not for this browser.".into());
    }
    match finish(&state, &demo, &code, &saved).await {
        Ok(claims) => render(StatusCode::OK, &DemoPage { page, claims: Some(claims), error: None }),
        Err(e) => show_error(e.to_string()),
    }
}

/// Exchanges the code like a partner: token endpoint with private_key_jwt, ID token checks,
/// then userinfo.
async fn finish(state: &AppState, demo: &DemoPartner, code: &str, saved: &DemoState) -> anyhow::Result<String> {
    let token_endpoint = state.settings.endpoint("/token");
    let http = reqwest::Client::new();
    let assertion = demo.client_assertion(&token_endpoint)?;
    let redirect_uri = state.settings.endpoint("/demo/callback");
    let res = http
        .post(&token_endpoint)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", saved.verifier.as_str()),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion.as_str()),
        ])
        .send()
        .await?;
    let body: serde_json::Value = res.json().await?;
    let Some(id_token) = body.get("id_token").and_then(|v| v.as_str()) else {
        anyhow::bail!("token endpoint said {}", body.get("error").and_then(|e| e.as_str()).unwrap_or("no id_token"));
    };
    let id_claims = state.keys.verify(id_token).map_err(|e| anyhow::anyhow!("ID token: {e}"))?;
    if id_claims.get("nonce").and_then(|n| n.as_str()) != Some(saved.nonce.as_str()) {
        anyhow::bail!("ID token nonce does not match");
    }
    let access = body.get("access_token").and_then(|v| v.as_str()).unwrap_or_default();
    let userinfo: serde_json::Value = http.get(state.settings.endpoint("/userinfo")).bearer_auth(access).send().await?.json().await?;
    let shown = json!({ "id_token": id_claims, "userinfo": userinfo, "code_hash_for_logs": sha256_hex(code)[..8].to_string() });
    Ok(serde_json::to_string_pretty(&shown)?)
}
