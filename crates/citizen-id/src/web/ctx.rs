//! The request context of a citizen-facing page: state, session, nonce, client IP. Loading it
//! fails with a "service unavailable" page when the database is down.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::middleware::{ClientIp, CspNonce};
use super::pages::{PageContext, message};
use super::session::{Session, with_cookie};
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

    /// A storage failure mid-request: a 503 page; the journey can be retried.
    pub fn fail(&self, e: impl std::fmt::Display) -> Response {
        tracing::error!(error = %e, "request failed");
        unavailable_page(self.page())
    }
}

pub fn unavailable(page: PageContext, e: &StoreError) -> Response {
    tracing::error!(error = %e, "storage unavailable");
    unavailable_page(page)
}

fn unavailable_page(page: PageContext) -> Response {
    message(
        page,
        StatusCode::SERVICE_UNAVAILABLE,
        "Sorry, the service is unavailable",
        &["We could not complete your request. Nothing has been changed. Try again in a few minutes."],
        Some(("/", "Go to the start")),
    )
}
