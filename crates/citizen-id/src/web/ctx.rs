//! The request context of a citizen-facing page: state, session, nonce, client IP. Loading it
//! fails with a "service unavailable" page when the database is down.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::middleware::{ClientIp, CspNonce};
use super::pages::{PageContext, message};
use super::session::{Session, with_cookie};
use crate::oidc::authorize::{AuthorizeRequest, Prompt};
use crate::oidc::error::ErrorCode;
use crate::state::AppState;
use crate::store::StoreError;

pub struct Ctx {
    pub state: AppState,
    pub session: Session,
    pub nonce: String,
    pub ip: String,
    pub headers: HeaderMap,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Ctx, Response> {
        let nonce = parts.extensions.get::<CspNonce>().map(CspNonce::value).unwrap_or_default();
        let ip = parts.extensions.get::<ClientIp>().map(|c| c.0.clone()).unwrap_or_else(|| "unknown".into());
        let page = PageContext { nonce: nonce.clone(), ..PageContext::default() };
        let session = Session::load(state, &parts.headers).await.map_err(|e| unavailable(page, &e))?;
        Ok(Ctx { state: state.clone(), session, nonce, ip, headers: parts.headers.clone() })
    }
}

impl Ctx {
    pub fn page(&self) -> PageContext {
        PageContext { nonce: self.nonce.clone(), csrf: self.session.csrf().to_string(), signed_in: self.session.data.auth.is_some() }
    }

    /// Saves the session and attaches its cookie to `response`.
    pub async fn finish(self, response: Response) -> Response {
        match self.session.save(&self.state).await {
            Ok(cookie) => with_cookie(response, cookie),
            Err(e) => unavailable(self.page(), &e),
        }
    }

    pub async fn redirect(self, to: &str) -> Response {
        self.finish(Redirect::to(to).into_response()).await
    }

    /// A failure mid-request (the database, PDS, a GP system). Once a partner's request is
    /// trusted its errors belong to the partner: with `prompt=none`, where no page may be
    /// shown, a redirect with `temporarily_unavailable` (spec Table 5); otherwise a 503 page
    /// that offers the way back to the partner as well as trying again. Nothing here touches
    /// the database, which may be what failed.
    pub fn fail(&self, e: impl std::fmt::Display) -> Response {
        tracing::error!(error = %e, "request failed");
        match &self.session.data.pending {
            Some(request) if request.prompt == Prompt::None => {
                Redirect::to(&request.error(ErrorCode::TemporarilyUnavailable, UNAVAILABLE).redirect_location().unwrap_or_default()).into_response()
            }
            Some(request) => {
                let back = cancel_link(self.state.kek.pepper(), request);
                message(self.page(), StatusCode::SERVICE_UNAVAILABLE, HEADING, &[TRY_AGAIN], Some((&back, &back_text(request))))
            }
            None => unavailable_page(self.page()),
        }
    }
}

impl Ctx {
    /// PDS or a GP system not answering, on a page that says which (`heading`, `text`) and
    /// offers `retry`. With a partner's request open, as [`Ctx::fail`]: `prompt=none` goes back
    /// to the partner at once, and otherwise the page's way on is back to the partner, which
    /// hears `temporarily_unavailable` (the text still says to try again).
    pub fn dependency_down(&self, heading: &str, text: &str, retry: (&str, &str)) -> Response {
        match &self.session.data.pending {
            Some(request) if request.prompt == Prompt::None => {
                Redirect::to(&request.error(ErrorCode::TemporarilyUnavailable, UNAVAILABLE).redirect_location().unwrap_or_default()).into_response()
            }
            Some(request) => {
                let back = cancel_link(self.state.kek.pepper(), request);
                message(self.page(), StatusCode::SERVICE_UNAVAILABLE, heading, &[text], Some((&back, &back_text(request))))
            }
            None => message(self.page(), StatusCode::SERVICE_UNAVAILABLE, heading, &[text], Some(retry)),
        }
    }
}

fn back_text(request: &AuthorizeRequest) -> String {
    format!("Go back to {}", if request.client_name.is_empty() { "the service you came from" } else { &request.client_name })
}

const UNAVAILABLE: &str = "The service is temporarily unavailable; try again later";
const HEADING: &str = "Sorry, the service is unavailable";
const TRY_AGAIN: &str = "We could not complete your request. Nothing has been changed. Try again in a few minutes.";

/// `/authorize/cancel` for `request`: its redirect URI and state, signed with the pepper, so
/// the way back works without reading the session (the database may be down) and cannot send
/// anyone to an address that was not a partner's trusted one.
pub fn cancel_link(pepper: &[u8], request: &AuthorizeRequest) -> String {
    let r = crate::crypto::b64url(request.redirect_uri.as_bytes());
    let s = crate::crypto::b64url(request.state.as_bytes());
    let sig = crate::crypto::hmac_hex(pepper, &format!("cancel:{r}.{s}"));
    format!("/authorize/cancel?r={r}&s={s}&sig={sig}")
}

/// The redirect a [`cancel_link`] stands for, when its signature holds.
pub fn cancelled(pepper: &[u8], r: &str, s: &str, sig: &str) -> Option<String> {
    let expected = crate::crypto::hmac_hex(pepper, &format!("cancel:{r}.{s}"));
    if !crate::crypto::constant_time_eq(&expected, sig) {
        return None;
    }
    let redirect_uri = String::from_utf8(crate::crypto::b64url_decode(r)?).ok()?;
    let state = String::from_utf8(crate::crypto::b64url_decode(s)?).ok()?;
    let error = crate::oidc::error::AuthorizeError::Redirect {
        redirect_uri,
        state: Some(state),
        error: crate::oidc::error::OAuthError::new(ErrorCode::TemporarilyUnavailable, "The user went back after the service failed"),
    };
    error.redirect_location()
}

pub fn unavailable(page: PageContext, e: &StoreError) -> Response {
    tracing::error!(error = %e, "storage unavailable");
    unavailable_page(page)
}

fn unavailable_page(page: PageContext) -> Response {
    message(page, StatusCode::SERVICE_UNAVAILABLE, HEADING, &[TRY_AGAIN], Some(("/", "Go to the start")))
}
