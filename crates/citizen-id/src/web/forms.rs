//! Form bodies, parsed by hand so that a malformed body gets a clear page rather than a
//! framework's plain-text rejection, and CSRF is checked in one place.

use std::collections::HashMap;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::pages::{PageContext, message};
use crate::crypto::constant_time_eq;
use crate::web::session::Session;

pub struct FormData(HashMap<String, String>);

impl FormData {
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn trimmed(&self, name: &str) -> &str {
        self.get(name).trim()
    }

    pub fn checked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }
}

/// Parses an urlencoded body; invalid UTF-8 or a repeated field is a 400 page.
#[expect(clippy::result_large_err, reason = "the error is the page to send, returned once per request; boxing it would only add an allocation")]
pub fn parse(page: &PageContext, body: &[u8]) -> Result<FormData, Response> {
    let bad = || {
        message(
            page.clone(),
            StatusCode::BAD_REQUEST,
            "Sorry, we could not read that form",
            &["Something went wrong with the information sent. Go back, check your answers and try again."],
            Some(("/", "Go to the start")),
        )
    };
    parse_fields(body).map(FormData).map_err(|MalformedForm| bad())
}

/// A body [`parse_fields`] refuses: invalid UTF-8 or a field named twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedForm;

/// The fields of an urlencoded body, with no page attached (also the fuzzing entry point,
/// `fuzz/fuzz_targets/form.rs`). A repeated name is refused rather than one value picked, so
/// a second `csrf_token` or `email` cannot shadow the first.
pub fn parse_fields(body: &[u8]) -> Result<HashMap<String, String>, MalformedForm> {
    if std::str::from_utf8(body).is_err() {
        return Err(MalformedForm);
    }
    let mut map = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if map.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err(MalformedForm);
        }
    }
    Ok(map)
}

/// A form post is accepted only with the session's CSRF token and from our own origin
/// (`Sec-Fetch-Site`/`Origin`, where the browser sends them).
pub fn check_csrf(session: &Session, form: &FormData, headers: &HeaderMap, issuer: &str) -> bool {
    let token_ok = constant_time_eq(form.get("csrf_token"), session.csrf());
    let site_ok = match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => site == "same-origin" || site == "none",
        None => true,
    };
    let origin_ok = match headers.get("origin").and_then(|v| v.to_str().ok()) {
        Some(origin) => url::Url::parse(issuer).is_ok_and(|u| u.origin().ascii_serialization() == origin),
        None => true,
    };
    if !(token_ok && site_ok && origin_ok) {
        tracing::warn!(token_ok, site_ok, origin_ok, "form refused by CSRF checks");
    }
    token_ok && site_ok && origin_ok
}

pub fn csrf_failure(page: PageContext) -> Response {
    message(
        page,
        StatusCode::FORBIDDEN,
        "Your session has expired",
        &["For your security, we could not accept that form. This happens if you wait too long or open the page in another tab."],
        Some(("/", "Start again")),
    )
}
