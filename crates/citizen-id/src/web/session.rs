//! Server-side browser sessions. The cookie carries 256 random bits; the database holds the
//! SHA-256 of it and the typed session data. One session is the single sign-on session shared
//! by every partner; its id is rotated whenever the citizen signs in (session fixation).

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::accounts::journey::Journey;
use crate::clock;
use crate::config::Settings;
use crate::crypto::{random_token, sha256_hex};
use crate::oidc::authorize::AuthorizeRequest;
use crate::state::AppState;
use crate::store::StoreError;

/// Who is signed in, how, and when.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Authenticated {
    pub account_id: String,
    /// Unix seconds of the sign-in (the `auth_time` claim).
    pub auth_time: i64,
    /// Credentials presented: "Cp", "Cd", "Cm".
    pub credentials: Vec<String>,
    /// Unix seconds when this browser last presented the password and an SMS code, or a
    /// passkey: what sensitive changes need within `limits.reauth_window` (ASVS 7.5). Never
    /// set by a remembered device, SSO or an asserted sign-in (`web::journeys::reauth`).
    #[serde(default)]
    pub fresh_at: Option<i64>,
}

impl Authenticated {
    pub fn credential_set(&self) -> domain::CredentialSet {
        let mut set = domain::CredentialSet::default();
        for c in &self.credentials {
            if let Ok(c) = domain::Credential::parse(c) {
                set.insert(c);
            }
        }
        set
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionData {
    /// Per-session CSRF token, compared with every form post.
    pub csrf: String,
    pub auth: Option<Authenticated>,
    /// The partner's authorization request being served.
    pub pending: Option<AuthorizeRequest>,
    /// Progress through a multi-page journey (register, sign in, reset).
    pub journey: Option<Journey>,
    /// Where to go after signing in when no partner request is pending (e.g. `/settings`).
    #[serde(default)]
    pub return_to: Option<String>,
    /// The id of the passkey ceremony in progress (its state is in `webauthn_ceremonies`).
    #[serde(default)]
    pub passkey_ceremony: Option<String>,
    /// A "Confirm it's you" in progress (`web::journeys::reauth`).
    #[serde(default)]
    pub reauth: Option<crate::accounts::reauth::Reauth>,
}

pub struct Session {
    id: String,
    created_at: i64,
    /// The id this session had when loaded, deleted on rotation.
    replaced: Option<String>,
    pub data: SessionData,
}

const COOKIE_LOCAL: &str = "cid_session";
const COOKIE_SECURE: &str = "__Host-cid_session";

pub fn cookie_name(settings: &Settings) -> &'static str {
    if settings.secure_cookies() { COOKIE_SECURE } else { COOKIE_LOCAL }
}

/// The value of cookie `name` in the request.
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value with the project's attributes (HttpOnly, SameSite=Lax, Secure outside
/// localhost, Path=/ as `__Host-` requires).
pub fn cookie_header(settings: &Settings, name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if settings.secure_cookies() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"))
        .expect("cookie is ASCII")
}

impl Session {
    /// Loads the session named by the cookie, or starts a new one (not stored until saved).
    pub async fn load(state: &AppState, headers: &HeaderMap) -> Result<Session, StoreError> {
        let now = clock::now_ms();
        if let Some(id) = read_cookie(headers, cookie_name(&state.settings)).filter(|v| v.len() >= 40 && v.len() <= 64)
            && let Some(record) = state.db.session(&sha256_hex(id), now).await?
            && let Ok(data) = serde_json::from_str::<SessionData>(&record.data)
        {
            return Ok(Session { id: id.to_string(), created_at: record.created_at, replaced: None, data });
        }
        Ok(Session::fresh(now))
    }

    fn fresh(now: i64) -> Session {
        Session {
            id: random_token(32),
            created_at: now,
            replaced: None,
            data: SessionData { csrf: random_token(32), ..SessionData::default() },
        }
    }

    /// Gives the session a new id and CSRF token (at sign-in), keeping its data.
    pub fn rotate(&mut self) {
        let old = std::mem::replace(&mut self.id, random_token(32));
        self.replaced.get_or_insert(old);
        self.data.csrf = random_token(32);
        self.created_at = clock::now_ms();
    }

    /// Ends the session: the data is wiped and a new, empty session starts.
    pub fn clear(&mut self) {
        let fresh = Session::fresh(clock::now_ms());
        let old = std::mem::replace(&mut self.id, fresh.id);
        self.replaced.get_or_insert(old);
        self.data = fresh.data;
        self.created_at = fresh.created_at;
    }

    pub fn csrf(&self) -> &str {
        &self.data.csrf
    }

    pub fn account_id(&self) -> Option<&str> {
        self.data.auth.as_ref().map(|a| a.account_id.as_str())
    }

    /// Stores the session and returns the cookie to set.
    pub async fn save(&self, state: &AppState) -> Result<HeaderValue, StoreError> {
        let limits = &state.settings.limits;
        let now = clock::now_ms();
        if let Some(old) = &self.replaced {
            state.db.delete_session(&sha256_hex(old)).await?;
        }
        let data = serde_json::to_string(&self.data).expect("session data serialises");
        let expires_at = self.created_at + limits.session_absolute;
        state
            .db
            .save_session(&sha256_hex(&self.id), &data, self.account_id(), self.created_at, now + limits.session_idle, expires_at)
            .await?;
        let max_age = ((expires_at - now) / 1000).max(0);
        Ok(cookie_header(&state.settings, cookie_name(&state.settings), &self.id, max_age))
    }
}

/// Adds the session cookie to a response.
pub fn with_cookie(mut response: axum::response::Response, cookie: HeaderValue) -> axum::response::Response {
    response.headers_mut().append(SET_COOKIE, cookie);
    response
}
