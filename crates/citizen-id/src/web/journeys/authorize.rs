//! `/authorize` (GET and POST, Federation spec 3.4) and the step that resumes it after each
//! page of sign-in, proofing or consent.

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::accounts::signin::audit;
use crate::oidc::asserted_identity::{self, AssertedSignIn};
use crate::oidc::authorize::{self, AuthorizeRequest, Prompt, RawParams};
use crate::oidc::error::AuthorizeError;
use crate::oidc::issue::{self, NextStep};
use crate::web::ctx::Ctx;
use crate::web::pages::message;
use crate::web::session::Authenticated;

pub async fn get_authorize(ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    let raw = query.unwrap_or_default();
    start(ctx, url::form_urlencoded::parse(raw.as_bytes()).into_owned().collect()).await
}

pub async fn post_authorize(ctx: Ctx, body: Bytes) -> Response {
    if std::str::from_utf8(&body).is_err() {
        return untrusted(&ctx, "The request could not be read");
    }
    start(ctx, url::form_urlencoded::parse(&body).into_owned().collect()).await
}

async fn start(mut ctx: Ctx, raw: RawParams) -> Response {
    // Look the partner up first (the parser itself does no I/O).
    let client_id = raw.iter().find(|(k, _)| k == "client_id").map(|(_, v)| v.clone()).unwrap_or_default();
    let partner = match ctx.state.db.partner(&client_id).await {
        // Only the redirect URIs this mode permits (`partners::usable_in`: no http in `serve`).
        Ok(p) => p.map(|p| crate::partners::usable_in(p, ctx.state.settings.mode)),
        Err(e) => return ctx.fail(e),
    };
    let request = match authorize::parse(raw, |_| partner) {
        Ok((request, _)) => request,
        Err(e @ AuthorizeError::Untrusted { .. }) => {
            let AuthorizeError::Untrusted { reason } = &e else { unreachable!() };
            return untrusted(&ctx, reason);
        }
        Err(e) => {
            metrics::counter!("citizen_id_authorize_errors_total").increment(1);
            return Redirect::to(&e.redirect_location().unwrap_or_default()).into_response();
        }
    };
    if request.prompt == Prompt::Login {
        // Sign in again whatever the session: drop the current sign-in (an assertion, which
        // only stands in for a session, is not used either).
        ctx.session.data.auth = None;
    } else if request.asserted_login_identity.is_some() {
        match asserted_identity::verify(&ctx.state, &request).await {
            Ok(signed_in) => sign_in_asserted(&mut ctx, &request, signed_in).await,
            // No SSO, and the partner allows a page: carry on as if no assertion had come.
            Err(e) if asserted_identity::falls_back_to_sign_in(&e, request.prompt) => {}
            Err(e) => {
                metrics::counter!("citizen_id_authorize_errors_total").increment(1);
                return Redirect::to(&request.error(e.code, &e.description).redirect_location().unwrap_or_default()).into_response();
            }
        }
    }
    ctx.session.data.pending = Some(request);
    resume(ctx).await
}

/// Signs the citizen named by a verified `asserted_login_identity` in to this browser, with no
/// interaction: a new session id (session fixation), the original sign-in's time and
/// credentials, and an audit record naming only the two partners.
async fn sign_in_asserted(ctx: &mut Ctx, request: &AuthorizeRequest, signed_in: AssertedSignIn) {
    ctx.session.rotate();
    ctx.session.data.auth =
        Some(Authenticated { account_id: signed_in.account_id.clone(), auth_time: signed_in.auth_time, credentials: signed_in.credentials });
    let detail = serde_json::json!({ "client_id": request.client_id, "asserted_by": signed_in.asserted_by });
    audit(&ctx.state, "signin.asserted_identity", Some(&signed_in.account_id), &ctx.ip, detail).await;
}

/// Carries on with the pending partner request, or goes home when there is none.
pub async fn resume(mut ctx: Ctx) -> Response {
    let Some(request) = ctx.session.data.pending.clone() else {
        let to = ctx.session.data.return_to.take().filter(|t| t.starts_with('/') && !t.starts_with("//")).unwrap_or_else(|| "/".into());
        return ctx.redirect(&to).await;
    };
    let next = issue::next_step(&ctx.state, &request, ctx.session.data.auth.as_ref()).await;
    match next {
        Err(e) => ctx.fail(e),
        Ok(NextStep::SignIn) => ctx.redirect("/signin").await,
        // Step-up (F6): the account is below the level the partner asked for.
        Ok(NextStep::ProveIdentity { .. }) => ctx.redirect("/prove-identity").await,
        Ok(NextStep::Consent) => ctx.redirect("/consent").await,
        Ok(NextStep::Redirect(location)) => {
            ctx.session.data.pending = None;
            ctx.finish(Redirect::to(&location).into_response()).await
        }
    }
}

pub async fn get_resume(ctx: Ctx) -> Response {
    resume(ctx).await
}

fn untrusted(ctx: &Ctx, reason: &str) -> Response {
    message(
        ctx.page(),
        StatusCode::BAD_REQUEST,
        "Sorry, there is a problem with the service you came from",
        &[reason, "Go back to the service and try again. If it keeps happening, contact that service."],
        None,
    )
}
