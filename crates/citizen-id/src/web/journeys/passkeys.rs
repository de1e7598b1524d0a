//! The passkey ceremonies' JSON endpoints, called by `assets/js/passkeys.js`:
//! `POST /passkeys/register/start|finish` and `POST /passkeys/signin/start|finish`.
//!
//! CSRF: a JSON post must carry the session's CSRF token in `X-CSRF-Token` (a header another
//! site cannot set without a CORS preflight we never grant) and, where the browser says where
//! it came from, come from our own origin. The ceremony id lives in the session; starting a
//! ceremony replaces any earlier one, finishing consumes it.

use axum::Json;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::Email;
use serde::Deserialize;
use serde_json::json;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::reauth::{self, ADD_PASSKEY_FINISH, ADD_PASSKEY_START};
use super::signin::establish;
use crate::accounts::journey::Journey;
use crate::accounts::limits::{self, Limit};
use crate::accounts::signin::audit;
use crate::crypto::constant_time_eq;
use crate::passkeys::register::Enrolment;
use crate::passkeys::{PasskeyError, authenticate, register};
use crate::web::ctx::Ctx;

/// Who may add a passkey in this session, and what follows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Enroller {
    /// A signed-in citizen (the account pages, the offer after registration).
    SignedIn(String),
    /// A new passwordless account's first passkey; it signs the citizen in.
    Setup(String),
    /// Recovery after email and SMS codes; it ends the account's other sessions.
    Recovery(String),
}

impl Enroller {
    fn of(ctx: &Ctx) -> Option<Enroller> {
        match &ctx.session.data.journey {
            Some(Journey::PasskeySetup { account_id }) => return Some(Enroller::Setup(account_id.clone())),
            Some(Journey::Reset { account_id: Some(a), mobile_verified: true, .. }) => return Some(Enroller::Recovery(a.clone())),
            _ => {}
        }
        ctx.session.account_id().map(|a| Enroller::SignedIn(a.to_string()))
    }

    fn account_id(&self) -> &str {
        match self {
            Enroller::SignedIn(a) | Enroller::Setup(a) | Enroller::Recovery(a) => a,
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// The JSON twin of `forms::check_csrf`: the token from the `X-CSRF-Token` header.
fn csrf_ok(ctx: &Ctx) -> bool {
    let header = |name: &str| ctx.headers.get(name).and_then(|v| v.to_str().ok());
    let token_ok = header("x-csrf-token").is_some_and(|t| constant_time_eq(t, ctx.session.csrf()));
    let site_ok = header("sec-fetch-site").is_none_or(|site| site == "same-origin" || site == "none");
    let origin_ok = header("origin")
        .is_none_or(|origin| url::Url::parse(&ctx.state.settings.issuer).is_ok_and(|u| u.origin().ascii_serialization() == origin));
    if !(token_ok && site_ok && origin_ok) {
        tracing::warn!(token_ok, site_ok, origin_ok, "passkey request refused by CSRF checks");
    }
    token_ok && site_ok && origin_ok
}

/// Checks CSRF and the per-IP limit, then parses the body as `T`.
async fn accept<T: for<'de> Deserialize<'de>>(ctx: &Ctx, body: &Bytes) -> Result<T, Response> {
    admit(ctx).await?;
    parse(body)
}

/// Checks CSRF and the per-IP limit.
async fn admit(ctx: &Ctx) -> Result<(), Response> {
    if !csrf_ok(ctx) {
        return Err(error(StatusCode::FORBIDDEN, "Your session has expired. Reload the page and try again."));
    }
    match limits::per_ip(&ctx.state, "passkey", &ctx.ip).await {
        Ok(Limit::Allowed) => Ok(()),
        Ok(Limit::Exceeded) => Err(error(StatusCode::TOO_MANY_REQUESTS, "Too many attempts. Wait a few minutes, then try again.")),
        Err(e) => Err(unavailable(&e)),
    }
}

#[expect(clippy::result_large_err, reason = "the error is the answer to send, returned once per request, as in forms::parse")]
fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        tracing::info!(error = %e, "unreadable passkey request");
        error(StatusCode::BAD_REQUEST, "Something went wrong with your passkey. Try again.")
    })
}

fn unavailable(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "passkey request failed");
    error(StatusCode::SERVICE_UNAVAILABLE, "Sorry, the service is unavailable. Try again in a few minutes.")
}

/// Maps a ceremony failure to what the citizen is told; the detail goes to the log only.
fn refused(e: PasskeyError, what: &str) -> Response {
    match e {
        PasskeyError::Store(e) => unavailable(&e),
        PasskeyError::NoCeremony => {
            error(StatusCode::BAD_REQUEST, "That took too long, or the page was used twice. Try again.")
        }
        PasskeyError::AlreadyRegistered => error(StatusCode::CONFLICT, "This passkey is already set up. You can use it to sign in."),
        e @ (PasskeyError::Rejected(_) | PasskeyError::UnknownCredential) => {
            tracing::info!(error = %e, "passkey refused");
            error(StatusCode::UNAUTHORIZED, what)
        }
    }
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn post_register_start(mut ctx: Ctx, body: Bytes) -> Response {
    if let Err(r) = admit(&ctx).await {
        return r;
    }
    let Some(enroller) = Enroller::of(&ctx) else { return error(StatusCode::UNAUTHORIZED, "Sign in to add a passkey.") };
    // Adding a passkey to a signed-in account needs a fresh credential (`reauth.rs`); a new
    // account's first passkey and recovery are their own proof.
    if matches!(enroller, Enroller::SignedIn(_)) && !reauth::fresh(&ctx) {
        return reauth::refused_json(&ADD_PASSKEY_START);
    }
    if let Err(r) = parse::<Empty>(&body) {
        return r;
    }
    let account = match ctx.state.db.account(enroller.account_id()).await {
        Ok(Some(a)) => a,
        Ok(None) => return error(StatusCode::UNAUTHORIZED, "Sign in to add a passkey."),
        Err(e) => return unavailable(&e),
    };
    match register::start(&ctx.state, &account).await {
        Ok((options, id)) => {
            ctx.session.data.passkey_ceremony = Some(id);
            ctx.finish(Json(options).into_response()).await
        }
        Err(e) => refused(e, "We could not start creating a passkey. Try again."),
    }
}

#[derive(Deserialize)]
pub struct RegisterFinish {
    #[serde(default)]
    name: String,
    credential: RegisterPublicKeyCredential,
}

pub async fn post_register_finish(mut ctx: Ctx, body: Bytes) -> Response {
    if let Err(r) = admit(&ctx).await {
        return r;
    }
    let Some(enroller) = Enroller::of(&ctx) else { return error(StatusCode::UNAUTHORIZED, "Sign in to add a passkey.") };
    // Refused before the body is even read, and without spending the ceremony.
    if matches!(enroller, Enroller::SignedIn(_)) && !reauth::fresh(&ctx) {
        return reauth::refused_json(&ADD_PASSKEY_FINISH);
    }
    let input = match parse::<RegisterFinish>(&body) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let Some(ceremony) = ctx.session.data.passkey_ceremony.take() else { return refused(PasskeyError::NoCeremony, "") };
    let enrolment = if matches!(enroller, Enroller::Recovery(_)) { Enrolment::Recovery } else { Enrolment::Ordinary };
    let account_id = enroller.account_id().to_string();
    // A passkey added to an existing account changes how it can be signed in to: its owner is
    // told, in the transaction that stores it (not for a new passwordless account's first
    // passkey, which is part of registering).
    let owner = match enroller {
        Enroller::Setup(_) => None,
        _ => match ctx.state.db.account(&account_id).await {
            Ok(account) => account.map(|a| a.email),
            Err(e) => return ctx.fail(e),
        },
    };
    let finished = register::finish(&ctx.state, &ceremony, &account_id, &input.name, &input.credential, enrolment, owner.as_deref()).await;
    let record = match finished {
        Ok(r) => r,
        Err(e) => {
            let response = refused(e, "We could not create that passkey. Try again, or use another device.");
            return ctx.finish(response).await;
        }
    };
    audit(&ctx.state, "passkey.added", Some(&account_id), &ctx.ip, json!({ "passkey": record.id, "recovery": enrolment == Enrolment::Recovery }))
        .await;
    match enroller {
        Enroller::SignedIn(_) => {}
        Enroller::Setup(_) => {
            ctx.session.data.journey = None;
            if let Err(e) = establish(&mut ctx, &account_id, &["Cm"], true).await {
                return unavailable(&e);
            }
        }
        // As after a password reset: signed out everywhere, sign in with the new passkey.
        Enroller::Recovery(_) => ctx.session.clear(),
    }
    ctx.finish(Json(json!({ "ok": true })).into_response()).await
}

#[derive(Deserialize)]
pub struct SignInStart {
    #[serde(default)]
    email: Option<String>,
    /// From "Confirm it's you": a ceremony for the signed-in account only (any email is ignored).
    #[serde(default)]
    reauth: bool,
}

pub async fn post_signin_start(mut ctx: Ctx, body: Bytes) -> Response {
    let input = match accept::<SignInStart>(&ctx, &body).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    if input.reauth {
        return start_reauth(ctx).await;
    }
    let email = match input.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        None => None,
        Some(e) => match Email::parse(e) {
            Ok(e) => Some(e),
            Err(_) => return error(StatusCode::BAD_REQUEST, "Enter an email address in the correct format, like name@example.com"),
        },
    };
    if let Some(email) = &email {
        match limits::per_account(&ctx.state, "passkey", email.as_str()).await {
            Ok(Limit::Allowed) => {}
            Ok(Limit::Exceeded) => return error(StatusCode::TOO_MANY_REQUESTS, "Too many attempts. Wait 15 minutes, then try again."),
            Err(e) => return unavailable(&e),
        }
    }
    match authenticate::start(&ctx.state, email.as_ref()).await {
        Ok((options, id)) => {
            ctx.session.data.passkey_ceremony = Some(id);
            ctx.finish(Json(options).into_response()).await
        }
        Err(e) => refused(e, "We could not start signing you in with a passkey. Try again."),
    }
}

/// A passkey ceremony for "Confirm it's you": bound to the signed-in account (only its passkeys
/// are asked for, and `authenticate::finish` refuses any other account's), limited per account
/// like a sign-in for that account's email.
async fn start_reauth(mut ctx: Ctx) -> Response {
    let Some(mut target) = reauth::passkey_target(&ctx) else {
        return error(StatusCode::UNAUTHORIZED, "That took too long, or the page was used twice. Reload the page and try again.");
    };
    let account = match ctx.state.db.account(&target.account_id).await {
        Ok(Some(a)) => a,
        Ok(None) => return error(StatusCode::UNAUTHORIZED, "Sign in again to continue."),
        Err(e) => return unavailable(&e),
    };
    let Ok(email) = Email::parse(&account.email) else { return error(StatusCode::UNAUTHORIZED, "Sign in again to continue.") };
    match limits::per_account(&ctx.state, "passkey", email.as_str()).await {
        Ok(Limit::Allowed) => {}
        Ok(Limit::Exceeded) => return error(StatusCode::TOO_MANY_REQUESTS, "Too many attempts. Wait 15 minutes, then try again."),
        Err(e) => return unavailable(&e),
    }
    match authenticate::start(&ctx.state, Some(&email)).await {
        Ok((options, id)) => {
            target.passkey_ceremony = Some(id.clone());
            ctx.session.data.reauth = Some(target);
            ctx.session.data.passkey_ceremony = Some(id);
            ctx.finish(Json(options).into_response()).await
        }
        Err(e) => refused(e, "We could not start checking your passkey. Try again."),
    }
}

#[derive(Deserialize)]
pub struct SignInFinish {
    credential: PublicKeyCredential,
}

pub async fn post_signin_finish(mut ctx: Ctx, body: Bytes) -> Response {
    let input = match accept::<SignInFinish>(&ctx, &body).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let Some(ceremony) = ctx.session.data.passkey_ceremony.take() else { return refused(PasskeyError::NoCeremony, "") };
    let confirming = reauth::passkey_target(&ctx).filter(|r| r.passkey_ceremony.as_deref() == Some(ceremony.as_str()));
    let account_id = match authenticate::finish(&ctx.state, &ceremony, &input.credential).await {
        Ok(a) => a,
        Err(e) => {
            if matches!(e, PasskeyError::Rejected(_) | PasskeyError::UnknownCredential) {
                audit(&ctx.state, "signin.passkey_rejected", None, &ctx.ip, json!({ "reason": e.to_string() })).await;
            }
            let response = refused(e, "We could not sign you in with that passkey. Try again, or sign in another way.");
            return ctx.finish(response).await;
        }
    };
    // "Confirm it's you": the same citizen, now fresh; back to the page they were on.
    if let Some(target) = confirming {
        if target.account_id != account_id {
            audit(&ctx.state, "reauth.passkey_rejected", None, &ctx.ip, json!({ "reason": "another account" })).await;
            let response = refused(PasskeyError::UnknownCredential, "That passkey is not for this account.");
            return ctx.finish(response).await;
        }
        reauth::mark_fresh(&mut ctx, "Cm").await;
        return ctx.finish(Json(json!({ "ok": true, "next": target.next })).into_response()).await;
    }
    ctx.session.data.journey = None;
    if let Err(e) = establish(&mut ctx, &account_id, &["Cm"], true).await {
        return unavailable(&e);
    }
    ctx.finish(Json(json!({ "ok": true, "next": "/authorize/resume" })).into_response()).await
}
