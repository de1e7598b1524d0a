//! Passkey pages (F9): the account's passkeys (list, add, remove, drop the password), the
//! offer after registration, the passwordless choice and first passkey, the recovery passkey,
//! and the sign-in page with its passkey button.
//!
//! Every page works without JavaScript except the ceremony itself: the "create" and "sign in
//! with a passkey" buttons are rendered `hidden` and shown by `assets/js/passkeys.js` only
//! when the browser has `window.PublicKeyCredential`; otherwise the page says so.

use askama::Template;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;

use super::reauth::{self, REMOVE_PASSKEY, REMOVE_PASSWORD};
use super::settings::{posted, signed_in, signed_in_fresh};
use crate::accounts::journey::Journey;
use crate::accounts::messages::{self, notice};
use crate::accounts::signin::audit;
use crate::clock;
use crate::store::passkeys::PasskeyRecord;
use crate::web::ctx::Ctx;
use crate::web::pages::{Form, PageContext, long_date, message, render};

/// The sign-in form with the passkey button and autofill (conditional UI).
#[derive(Template)]
#[template(path = "passkey_signin.html")]
pub struct SignInPage {
    pub page: PageContext,
    pub form: Form,
}

pub fn signin_page(page: PageContext, status: StatusCode, form: Form) -> Response {
    render(status, &SignInPage { page, form })
}

/// One page that creates a passkey; `next` is where the browser goes once it is stored.
#[derive(Template)]
#[template(path = "passkey_create.html")]
struct CreatePage {
    page: PageContext,
    heading: String,
    paragraphs: Vec<String>,
    next: String,
    /// A way on without a passkey (the offer is skippable; setup and recovery are not).
    skip: Option<(String, String)>,
    back: Option<String>,
}

struct PasskeyRow {
    id: String,
    name: String,
    created: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "passkeys.html")]
struct ListPage {
    page: PageContext,
    notice: Option<String>,
    passkeys: Vec<PasskeyRow>,
    has_password: bool,
    /// Without a fresh credential, "Add a passkey" is a link to confirm it's you first.
    confirm: Option<String>,
}

fn row(p: PasskeyRecord) -> PasskeyRow {
    PasskeyRow { id: p.id, name: p.name, created: long_date(p.created_at), last_used: p.last_used_at.map(long_date).unwrap_or_else(|| "Not used yet".into()) }
}

async fn list(ctx: Ctx, account_id: &str, has_password: bool, notice: Option<String>, status: StatusCode) -> Response {
    let passkeys = match ctx.state.db.passkeys_for_account(account_id).await {
        Ok(p) => p.into_iter().map(row).collect(),
        Err(e) => return ctx.fail(e),
    };
    let page = ctx.page();
    let confirm = (!reauth::fresh(&ctx)).then(|| reauth::confirm_url("/account/passkeys"));
    ctx.finish(render(status, &ListPage { page, notice, passkeys, has_password, confirm })).await
}

pub async fn get_account_passkeys(ctx: Ctx) -> Response {
    match signed_in(ctx, "/account/passkeys").await {
        Ok((ctx, account)) => list(ctx, &account.id, account.password_hash.is_some(), None, StatusCode::OK).await,
        Err(r) => r,
    }
}

/// Removes a passkey: it stops working at once (sign-in looks passkeys up at every finish).
pub async fn post_remove_passkey(ctx: Ctx, body: Bytes) -> Response {
    let data = match posted(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let (ctx, account) = match signed_in_fresh(ctx, &REMOVE_PASSKEY).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let id = data.trimmed("id").to_string();
    let removed = |name: &str| notice(&ctx.state, messages::Template::PasskeyRemoved, &account.email, serde_json::json!({ "passkey_name": name }));
    match ctx.state.db.delete_passkey(&account.id, &id, clock::now_ms(), removed).await {
        Ok(Some(_)) => {
            audit(&ctx.state, "passkey.removed", Some(&account.id), &ctx.ip, serde_json::json!({ "passkey": id })).await;
            let notice = Some("The passkey has been removed. It can no longer be used to sign in.".to_string());
            list(ctx, &account.id, account.password_hash.is_some(), notice, StatusCode::OK).await
        }
        Ok(None) => {
            let notice = Some("That passkey could not be removed. You need a password or another passkey to sign in.".to_string());
            list(ctx, &account.id, account.password_hash.is_some(), notice, StatusCode::CONFLICT).await
        }
        Err(e) => ctx.fail(e),
    }
}

/// Stops using a password: only once the account has a passkey (checked in the same statement).
/// Needs a fresh credential (`reauth.rs`) and no password field of its own: the confirmation
/// just asked for the password and an SMS code, or a passkey.
pub async fn post_remove_password(ctx: Ctx, body: Bytes) -> Response {
    if let Err(r) = posted(&ctx, &body).await {
        return r;
    }
    let (ctx, account) = match signed_in_fresh(ctx, &REMOVE_PASSWORD).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let removed = notice(&ctx.state, messages::Template::PasswordRemoved, &account.email, serde_json::json!({}));
    match ctx.state.db.remove_password(&account.id, clock::now_ms(), &removed).await {
        Ok(true) => {
            audit(&ctx.state, "account.password_removed", Some(&account.id), &ctx.ip, serde_json::json!({})).await;
            let notice = Some("You no longer have a password. Sign in with a passkey.".to_string());
            list(ctx, &account.id, false, notice, StatusCode::OK).await
        }
        Ok(false) => {
            let notice = Some("Add a passkey before you stop using your password.".to_string());
            list(ctx, &account.id, account.password_hash.is_some(), notice, StatusCode::CONFLICT).await
        }
        Err(e) => ctx.fail(e),
    }
}

async fn create_page(ctx: Ctx, page: CreatePage) -> Response {
    ctx.finish(render(StatusCode::OK, &page)).await
}

/// Right after registering with a password: offer a passkey, or go on without one.
pub async fn get_offer(ctx: Ctx) -> Response {
    if ctx.session.account_id().is_none() {
        return ctx.redirect("/signin").await;
    }
    let page = CreatePage {
        page: ctx.page(),
        heading: "Sign in faster with a passkey".into(),
        paragraphs: vec![
            "A passkey lets you sign in with your fingerprint, face or screen lock, without a password or security code.".into(),
            "It is kept on this device, or in your phone's or browser's password manager.".into(),
        ],
        next: "/authorize/resume".into(),
        skip: Some(("/authorize/resume".into(), "Not now".into())),
        back: None,
    };
    create_page(ctx, page).await
}

fn email_verified(ctx: &Ctx) -> bool {
    matches!(ctx.session.data.journey, Some(Journey::Register { email_verified: true, .. }))
}

/// The choice on the password step: a passkey instead of a password.
pub async fn get_passkey_instead(ctx: Ctx) -> Response {
    if !email_verified(&ctx) {
        return ctx.redirect("/register").await;
    }
    let page = ctx.page();
    ctx.finish(render(StatusCode::OK, &InsteadPage { page })).await
}

#[derive(Template)]
#[template(path = "passkey_instead.html")]
struct InsteadPage {
    page: PageContext,
}

pub async fn post_passkey_instead(mut ctx: Ctx, body: Bytes) -> Response {
    if let Err(r) = posted(&ctx, &body).await {
        return r;
    }
    match ctx.session.data.journey.as_mut() {
        Some(Journey::Register { email_verified: true, passwordless, password_hash, .. }) => {
            *passwordless = true;
            *password_hash = None;
        }
        _ => return ctx.redirect("/register").await,
    }
    ctx.redirect("/register/mobile").await
}

/// A passwordless account's first passkey.
pub async fn get_create_first(ctx: Ctx) -> Response {
    if !matches!(ctx.session.data.journey, Some(Journey::PasskeySetup { .. })) {
        return ctx.redirect("/register").await;
    }
    let page = CreatePage {
        page: ctx.page(),
        heading: "Create your passkey".into(),
        paragraphs: vec![
            "Your account has been created. Now create the passkey you will sign in with, using your fingerprint, face or screen lock.".into(),
            "If you lose this device, you can get back into your account with codes sent to your email and mobile phone.".into(),
        ],
        next: "/authorize/resume".into(),
        skip: Some(("/forgot-password".into(), "Set a password instead".into())),
        back: None,
    };
    create_page(ctx, page).await
}

/// Recovery after email and SMS codes: a new passkey instead of a new password.
pub async fn get_recovery(ctx: Ctx) -> Response {
    if !matches!(ctx.session.data.journey, Some(Journey::Reset { account_id: Some(_), mobile_verified: true, .. })) {
        return ctx.redirect("/forgot-password").await;
    }
    let page = CreatePage {
        page: ctx.page(),
        heading: "Create a new passkey".into(),
        paragraphs: vec![
            "Create a passkey on this device to get back into your account.".into(),
            "For your security, you will be signed out on every other device.".into(),
        ],
        next: "/forgot-password/passkey-created".into(),
        skip: None,
        back: Some("/forgot-password/new-password".into()),
    };
    create_page(ctx, page).await
}

pub async fn get_recovery_done(ctx: Ctx) -> Response {
    let page = ctx.page();
    message(
        page,
        StatusCode::OK,
        "Your new passkey is ready",
        &[
            "You have been signed out everywhere. Sign in with your new passkey.",
            "If you lost a device, remove its passkey from your account once you have signed in.",
        ],
        Some(("/signin", "Sign in")),
    )
}
