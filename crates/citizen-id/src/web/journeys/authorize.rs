//! `/authorize` (GET and POST, Federation spec 3.4) and the step that resumes it after each
//! page of sign-in, proofing or consent.

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::accounts::signin::audit;
use crate::oidc::asserted_identity::{self, AssertedSignIn};
use crate::oidc::authorize::{self, AuthorizeRequest, Prompt, RawParams};
use crate::oidc::error::{AuthorizeError, ErrorCode};
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
    // A new request replaces the one before, and any assertion that came for that one.
    ctx.session.data.asserted = None;
    // prompt=login: a sign-in made for this request. The current one stays (unused) until the
    // new one completes, so a link from any site cannot end the citizen's session.
    ctx.session.data.sign_in_required = request.prompt == Prompt::Login;
    if request.prompt != Prompt::Login && request.asserted_login_identity.is_some() {
        match asserted_identity::verify(&ctx.state, &request).await {
            Ok(signed_in) => {
                if let Err(response) = accept_assertion(&mut ctx, &request, signed_in).await {
                    return response;
                }
            }
            // No SSO, and the partner allows a page: carry on as if no assertion had come.
            Err(e) if asserted_identity::falls_back_to_sign_in(&e, request.prompt) => {}
            Err(e) => return to_partner(&request, e.code, &e.description),
        }
    }
    ctx.session.data.pending = Some(request);
    resume(ctx).await
}

fn to_partner(request: &AuthorizeRequest, code: ErrorCode, description: &str) -> Response {
    metrics::counter!("citizen_id_authorize_errors_total").increment(1);
    Redirect::to(&request.error(code, description).redirect_location().unwrap_or_default()).into_response()
}

/// Lets a verified `asserted_login_identity` complete this request, and nothing else: it is
/// kept beside the request (`SessionData::asserted`), never as the browser's sign-in, so it
/// opens no account page, no other partner and no passkey enrolment. A browser already signed
/// in as someone else is not switched (login CSRF): with `prompt=none` the partner hears
/// `sso_login_required`, otherwise the citizen is asked to sign in.
async fn accept_assertion(ctx: &mut Ctx, request: &AuthorizeRequest, signed_in: AssertedSignIn) -> Result<(), Response> {
    match ctx.session.data.auth.as_ref() {
        // Already signed in here as that citizen: the browser's own sign-in serves.
        Some(auth) if auth.account_id == signed_in.account_id => return Ok(()),
        Some(_) if request.prompt == Prompt::None => {
            return Err(to_partner(request, ErrorCode::SsoLoginRequired, "The browser is signed in as another user"));
        }
        Some(_) => {
            ctx.session.data.sign_in_required = true;
            return Ok(());
        }
        None => {}
    }
    let detail = serde_json::json!({ "client_id": request.client_id, "asserted_by": signed_in.asserted_by });
    audit(&ctx.state, "signin.asserted_identity", Some(&signed_in.account_id), &ctx.ip, detail).await;
    ctx.session.data.asserted =
        Some(Authenticated { account_id: signed_in.account_id, auth_time: signed_in.auth_time, credentials: signed_in.credentials, fresh_at: None });
    Ok(())
}

/// Carries on with the pending partner request, or goes home when there is none.
pub async fn resume(mut ctx: Ctx) -> Response {
    let Some(request) = ctx.session.data.pending.clone() else {
        let to = ctx.session.data.return_to.take().filter(|t| t.starts_with('/') && !t.starts_with("//")).unwrap_or_else(|| "/".into());
        return ctx.redirect(&to).await;
    };
    let next = issue::next_step(&ctx.state, &request, ctx.session.data.sign_in_for_pending()).await;
    match next {
        Err(e) => ctx.fail(e),
        Ok(NextStep::SignIn) => ctx.redirect("/signin").await,
        // Step-up (F6): the account is below the level the partner asked for.
        Ok(NextStep::ProveIdentity { .. }) => ctx.redirect("/prove-identity").await,
        Ok(NextStep::Consent) => ctx.redirect("/consent").await,
        Ok(NextStep::Redirect(location)) => {
            ctx.session.data.end_pending();
            ctx.finish(Redirect::to(&location).into_response()).await
        }
    }
}

pub async fn get_resume(ctx: Ctx) -> Response {
    resume(ctx).await
}

/// "Go back to <partner>" from a failure page (`Ctx::fail`): the partner hears
/// `temporarily_unavailable`. Reads no session and no database (either may have failed).
pub async fn get_cancel(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let field = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    match crate::web::ctx::cancelled(state.kek.pepper(), field("r"), field("s"), field("sig")) {
        Some(location) => Redirect::to(&location).into_response(),
        None => Redirect::to("/").into_response(),
    }
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
