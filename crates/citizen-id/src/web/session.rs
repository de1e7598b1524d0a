//! Server-side browser sessions. The cookie carries 256 random bits; the database holds the
//! SHA-256 of it and the typed session data. One session is the single sign-on session shared
//! by every partner; its id is rotated whenever the citizen signs in (session fixation).
//!
//! A row is stored only while the session holds something to keep (a sign-in, a partner
//! request, a journey): an anonymous visitor reading pages costs no storage, so a script
//! cannot fill the table with GETs. The CSRF token is derived from the cookie's id with the
//! server's pepper, so it needs no row either and still changes whenever the id does.

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
    /// The browser's own sign-in: the single sign-on session, account pages, every partner.
    pub auth: Option<Authenticated>,
    /// The partner's authorization request being served.
    pub pending: Option<AuthorizeRequest>,
    /// A sign-in vouched for by another partner (`asserted_login_identity`). It may complete
    /// `pending`, the request it came with, for that partner only: it is dropped with that
    /// request, never becomes `auth`, and so never reaches account pages, passkeys, other
    /// partners or the data download (a partner holding an ID token's `jti` must not be able
    /// to open the citizen's account in its own browser).
    #[serde(default)]
    pub asserted: Option<Authenticated>,
    /// The pending request needs a sign-in made for it (`prompt=login`, or an assertion for
    /// someone other than the citizen already signed in here): `auth` is kept, unused, until
    /// the new sign-in completes, so a link from any site cannot sign the citizen out.
    #[serde(default)]
    pub sign_in_required: bool,
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

impl SessionData {
    /// The sign-in that may complete the pending partner request: an assertion that came with
    /// it, else the browser's own sign-in unless a new one is required.
    pub fn sign_in_for_pending(&self) -> Option<&Authenticated> {
        if self.sign_in_required {
            return None;
        }
        self.asserted.as_ref().or(self.auth.as_ref())
    }

    /// The partner request is answered (or abandoned): it goes, with what was only for it.
    pub fn end_pending(&mut self) {
        self.pending = None;
        self.asserted = None;
        self.sign_in_required = false;
    }

    /// A sign-in made in this browser: it replaces whatever stood in for one.
    pub fn signed_in(&mut self, auth: Authenticated) {
        self.auth = Some(auth);
        self.asserted = None;
        self.sign_in_required = false;
    }

    /// Nothing worth a row: the visitor is anonymous and in no journey.
    fn is_empty(&self) -> bool {
        self.auth.is_none()
            && self.pending.is_none()
            && self.asserted.is_none()
            && self.journey.is_none()
            && self.return_to.is_none()
            && self.passkey_ceremony.is_none()
            && self.reauth.is_none()
    }
}

pub struct Session {
    id: String,
    /// Derived from `id` (see the module docs).
    csrf: String,
    created_at: i64,
    /// The id this session had when loaded, deleted on rotation.
    replaced: Option<String>,
    /// Whether a row for `id` was found at load (so an emptied session deletes it).
    stored: bool,
    pepper: [u8; 32],
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

/// Session ids are `random_token(32)`: 43 base64url characters. Anything else in the cookie
/// is ignored and a new id is given.
fn is_session_id(value: &str) -> bool {
    value.len() == 43 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn csrf_for(pepper: &[u8], id: &str) -> String {
    crate::crypto::hmac_hex(pepper, &format!("csrf:{id}"))
}

impl Session {
    /// Loads the session named by the cookie. A well-formed id with no row (an anonymous
    /// visitor) keeps its id, so the CSRF token of the page it was given still matches.
    pub async fn load(state: &AppState, headers: &HeaderMap) -> Result<Session, StoreError> {
        let now = clock::now_ms();
        let pepper: [u8; 32] = state.kek.pepper().try_into().expect("the pepper is 32 bytes");
        let Some(id) = read_cookie(headers, cookie_name(&state.settings)).filter(|v| is_session_id(v)) else {
            return Ok(Session::fresh(pepper, now));
        };
        if let Some(record) = state.db.session(&sha256_hex(id), now).await?
            && let Ok(data) = serde_json::from_str::<SessionData>(&record.data)
        {
            return Ok(Session { id: id.to_string(), csrf: csrf_for(&pepper, id), created_at: record.created_at, replaced: None, stored: true, pepper, data });
        }
        Ok(Session { id: id.to_string(), csrf: csrf_for(&pepper, id), created_at: now, replaced: None, stored: false, pepper, data: SessionData::default() })
    }

    fn fresh(pepper: [u8; 32], now: i64) -> Session {
        let id = random_token(32);
        Session { csrf: csrf_for(&pepper, &id), id, created_at: now, replaced: None, stored: false, pepper, data: SessionData::default() }
    }

    fn replace_id(&mut self) {
        let new = random_token(32);
        self.csrf = csrf_for(&self.pepper, &new);
        let old = std::mem::replace(&mut self.id, new);
        if self.stored {
            self.replaced.get_or_insert(old);
        }
        self.stored = false;
        self.created_at = clock::now_ms();
    }

    /// Gives the session a new id and CSRF token (at sign-in), keeping its data.
    pub fn rotate(&mut self) {
        self.replace_id();
    }

    /// Ends the session: the data is wiped and a new, empty session starts.
    pub fn clear(&mut self) {
        self.replace_id();
        self.data = SessionData::default();
    }

    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    pub fn account_id(&self) -> Option<&str> {
        self.data.auth.as_ref().map(|a| a.account_id.as_str())
    }

    /// Stores the session (or deletes its row once nothing is left to keep) and returns the
    /// cookie to set.
    pub async fn save(&self, state: &AppState) -> Result<HeaderValue, StoreError> {
        let limits = &state.settings.limits;
        let now = clock::now_ms();
        if let Some(old) = &self.replaced {
            state.db.delete_session(&sha256_hex(old)).await?;
        }
        let expires_at = self.created_at + limits.session_absolute;
        if self.data.is_empty() {
            if self.stored {
                state.db.delete_session(&sha256_hex(&self.id)).await?;
            }
        } else {
            let data = serde_json::to_string(&self.data).expect("session data serialises");
            state
                .db
                .save_session(&sha256_hex(&self.id), &data, self.account_id(), self.created_at, now + limits.session_idle, expires_at)
                .await?;
        }
        let max_age = ((expires_at - now) / 1000).max(0);
        Ok(cookie_header(&state.settings, cookie_name(&state.settings), &self.id, max_age))
    }
}

/// Adds the session cookie to a response.
pub fn with_cookie(mut response: axum::response::Response, cookie: HeaderValue) -> axum::response::Response {
    response.headers_mut().append(SET_COOKIE, cookie);
    response
}
