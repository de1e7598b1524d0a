//! Consent (F4): before claims first reach a partner, the citizen agrees or declines.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::authorize::resume;
use crate::clock;
use crate::web::ctx::Ctx;
use crate::web::forms::{self, check_csrf, csrf_failure};
use crate::web::pages::{ConsentPage, render};

pub async fn get_consent(ctx: Ctx) -> Response {
    let (Some(request), Some(_)) = (ctx.session.data.pending.clone(), ctx.session.data.sign_in_for_pending()) else {
        return ctx.redirect("/").await;
    };
    let partner = match ctx.state.db.partner(&request.client_id).await {
        Ok(Some(p)) => p,
        Ok(None) => return ctx.redirect("/").await,
        Err(e) => return ctx.fail(e),
    };
    let details = request
        .scopes()
        .iter()
        .filter(|s| *s != domain::Scope::Openid)
        .map(|s| s.description().to_string())
        .collect::<Vec<_>>();
    let details = if details.is_empty() { vec!["That you have a Citizen ID account".to_string()] } else { details };
    let page = ctx.page();
    ctx.finish(render(StatusCode::OK, &ConsentPage { page, partner_name: partner.name, details })).await
}

pub async fn post_consent(mut ctx: Ctx, body: Bytes) -> Response {
    let form = match forms::parse(&ctx.page(), &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if !check_csrf(&ctx.session, &form, &ctx.headers, &ctx.state.settings.issuer) {
        return csrf_failure(ctx.page());
    }
    let (Some(request), Some(auth)) = (ctx.session.data.pending.clone(), ctx.session.data.sign_in_for_pending().cloned()) else {
        return ctx.redirect("/").await;
    };
    if form.get("decision") == "agree" {
        if let Err(e) = ctx.state.db.save_consent(&auth.account_id, &request.client_id, &request.scope, clock::now_ms()).await {
            return ctx.fail(e);
        }
        return resume(ctx).await;
    }
    // Declined: the partner hears access_denied / ConsentNotGiven (SPEC F4).
    ctx.session.data.end_pending();
    let location = crate::oidc::issue::denied(&request, "ConsentNotGiven");
    ctx.finish(Redirect::to(&location).into_response()).await
}
