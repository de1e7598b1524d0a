//! "Confirm it's you": sensitive changes need a fresh credential in this browser (OWASP ASVS
//! 5.0 V7.5.1–7.5.3). Changing the email, mobile (and with it the NHS record), landline or
//! password, adding or removing a passkey, removing the password, the data download and
//! deleting the account each need the password and an SMS code, or a passkey, presented in
//! this browser within `limits.reauth_window` (15 minutes). A remembered device standing in
//! for the SMS code, a session reused by another partner (SSO) and an asserted sign-in never
//! count: none of them shows that the person at this browser holds the credentials now.
//!
//! The rule is in one place: [`SENSITIVE`] lists every route it covers, each handler calls
//! [`require_fresh`] (or [`fresh`] for the JSON passkey endpoints) with its entry, and a test
//! walks the list. A request that is not fresh changes nothing and goes to the confirm page,
//! which returns to the page the citizen was on (a GET page of this service) once confirmed:
//! a form posted after the window ran out is refused, not half-done.
//!
//! Confirming: the password (rate limited and counted as at sign-in, `accounts::reauth`), then
//! an SMS code; or a passkey of the signed-in account (the sign-in ceremony of `passkeys.rs`,
//! bound to that account). A passwordless account is offered the passkey only.

use askama::Template;
use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::settings::posted;
use crate::accounts::codes::{self, Purpose, Recipient, SendOutcome};
use crate::accounts::limits::{self, Limit};
use crate::accounts::reauth::{CurrentPassword, Reauth, check_current_password, is_fresh, local_path};
use crate::accounts::signin::audit;
use crate::clock;
use crate::store::accounts::AccountRecord;
use crate::store::codes::CodeCheck;
use crate::web::ctx::Ctx;
use crate::web::pages::{Field, Form, FieldError, PageContext, form, message, render};

/// How a sensitive route is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A page (GET): confirming comes back to it.
    Page,
    /// A form post: refused when not fresh, and the citizen is sent to confirm, then back to
    /// the form's page (`back_to`).
    Form,
    /// A JSON post from `passkeys.js`: refused with 403 and `{"reauth": <confirm page>}`.
    Json,
}

/// One route that needs a fresh credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sensitive {
    pub kind: Kind,
    pub path: &'static str,
    /// The page to come back to once confirmed (the route itself for a page).
    pub back_to: &'static str,
}

const fn page(path: &'static str) -> Sensitive {
    Sensitive { kind: Kind::Page, path, back_to: path }
}

const fn posted_to(path: &'static str, back_to: &'static str) -> Sensitive {
    Sensitive { kind: Kind::Form, path, back_to }
}

pub const EMAIL_PAGE: Sensitive = page("/settings/email");
pub const EMAIL: Sensitive = posted_to("/settings/email", "/settings/email");
pub const EMAIL_CODE: Sensitive = posted_to("/settings/email/code", "/settings/email");
pub const MOBILE_PAGE: Sensitive = page("/settings/mobile");
pub const MOBILE: Sensitive = posted_to("/settings/mobile", "/settings/mobile");
/// Also the PDS update ("also update my NHS record"), which happens at this step.
pub const MOBILE_CODE: Sensitive = posted_to("/settings/mobile/code", "/settings/mobile");
pub const LANDLINE_PAGE: Sensitive = page("/settings/landline");
pub const LANDLINE: Sensitive = posted_to("/settings/landline", "/settings/landline");
pub const PASSWORD_PAGE: Sensitive = page("/settings/password");
pub const PASSWORD: Sensitive = posted_to("/settings/password", "/settings/password");
pub const DOWNLOAD: Sensitive = page("/settings/download");
pub const DELETE_PAGE: Sensitive = page("/settings/delete");
pub const DELETE: Sensitive = posted_to("/settings/delete", "/settings/delete");
pub const REMOVE_PASSKEY: Sensitive = posted_to("/account/passkeys/remove", "/account/passkeys");
pub const REMOVE_PASSWORD: Sensitive = posted_to("/account/password/remove", "/account/passkeys");
pub const ADD_PASSKEY_START: Sensitive = Sensitive { kind: Kind::Json, path: "/passkeys/register/start", back_to: "/account/passkeys" };
pub const ADD_PASSKEY_FINISH: Sensitive = Sensitive { kind: Kind::Json, path: "/passkeys/register/finish", back_to: "/account/passkeys" };

/// Every route that needs a fresh credential (the test suite walks this list).
pub const SENSITIVE: &[Sensitive] = &[
    EMAIL_PAGE,
    EMAIL,
    EMAIL_CODE,
    MOBILE_PAGE,
    MOBILE,
    MOBILE_CODE,
    LANDLINE_PAGE,
    LANDLINE,
    PASSWORD_PAGE,
    PASSWORD,
    DOWNLOAD,
    DELETE_PAGE,
    DELETE,
    REMOVE_PASSKEY,
    REMOVE_PASSWORD,
    ADD_PASSKEY_START,
    ADD_PASSKEY_FINISH,
];

pub const CONFIRM_PATH: &str = "/confirm-it-is-you";
const CODE_PATH: &str = "/confirm-it-is-you/code";

/// Whether the signed-in session presented a fresh credential in this browser.
pub fn fresh(ctx: &Ctx) -> bool {
    let window = ctx.state.settings.limits.reauth_window;
    ctx.session.data.auth.as_ref().is_some_and(|a| is_fresh(a.fresh_at, window, clock::now_ms()))
}

/// The confirm page, coming back to `next`.
pub fn confirm_url(next: &str) -> String {
    format!("{CONFIRM_PATH}?{}", url::form_urlencoded::Serializer::new(String::new()).append_pair("next", next).finish())
}

/// The guard: the context back when the session is fresh; otherwise nothing is done and the
/// citizen is sent to confirm it is them, then back to `route.back_to`.
pub async fn require_fresh(ctx: Ctx, route: &Sensitive) -> Result<Ctx, Response> {
    if fresh(&ctx) {
        return Ok(ctx);
    }
    tracing::info!(route = route.path, "a sensitive action needs a fresh credential");
    Err(ctx.redirect(&confirm_url(route.back_to)).await)
}

/// The JSON answer of a sensitive JSON endpoint when the session is not fresh.
pub fn refused_json(route: &Sensitive) -> Response {
    let body = json!({ "error": "For your security, confirm it is you first.", "reauth": confirm_url(route.back_to) });
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

#[derive(Template)]
#[template(path = "reauth.html")]
struct ConfirmPage {
    page: PageContext,
    has_password: bool,
    errors: Vec<FieldError>,
    password: Field,
}

fn confirm_page(ctx: &Ctx, account: &AccountRecord, status: StatusCode, error: Option<&str>) -> Response {
    let mut password = Field::new("password", "Password", "password", "current-password");
    let mut errors = Vec::new();
    if let Some(message) = error {
        password.error = Some(message.to_string());
        errors.push(FieldError { field: "password".into(), message: message.into() });
    }
    render(status, &ConfirmPage { page: ctx.page(), has_password: account.password_hash.is_some(), errors, password })
}

/// The signed-in account, or a redirect to sign in (which is fresh itself) and on to `next`.
async fn account(ctx: Ctx, next: Option<&str>) -> Result<(Ctx, AccountRecord), Response> {
    super::settings::signed_in_returning(ctx, next).await
}

/// The confirmation in progress for the signed-in account, if any.
fn in_progress(ctx: &Ctx, account: &AccountRecord) -> Option<Reauth> {
    ctx.session.data.reauth.clone().filter(|r| r.account_id == account.id)
}

pub async fn get_confirm(ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let next = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "next")
        .and_then(|(_, v)| local_path(&v).map(String::from))
        .unwrap_or_else(|| "/settings".into());
    let (mut ctx, account) = match account(ctx, Some(&next)).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    ctx.session.data.reauth = Some(Reauth { account_id: account.id.clone(), next, password_ok: false, passkey_ceremony: None });
    let response = confirm_page(&ctx, &account, StatusCode::OK, None);
    ctx.finish(response).await
}

/// The password step; a right password sends an SMS code to the account's mobile.
pub async fn post_confirm(ctx: Ctx, body: Bytes) -> Response {
    let data = match posted(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let (mut ctx, account) = match account(ctx, None).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(mut reauth) = in_progress(&ctx, &account) else { return ctx.redirect(CONFIRM_PATH).await };
    if account.password_hash.is_none() {
        return confirm_page(&ctx, &account, StatusCode::BAD_REQUEST, None);
    }
    if data.get("password").is_empty() {
        return confirm_page(&ctx, &account, StatusCode::BAD_REQUEST, Some("Enter your password"));
    }
    match check_current_password(&ctx.state, &account, data.get("password"), &ctx.ip).await {
        Ok(CurrentPassword::Accepted) => {}
        Ok(CurrentPassword::Rejected) => return confirm_page(&ctx, &account, StatusCode::UNAUTHORIZED, Some("The password is not correct")),
        Ok(CurrentPassword::Locked) => return locked(ctx).await,
        Ok(CurrentPassword::TooMany) => return too_many(&ctx),
        Err(e) => return ctx.fail(e),
    }
    let Some(mobile) = account.mobile.clone() else { return ctx.fail("account has no mobile") };
    match codes::send(&ctx.state, Purpose::Reauth, &account.id, Recipient::To(&mobile), &ctx.ip).await {
        Ok(SendOutcome::Sent) => {}
        Ok(SendOutcome::TooMany) => return too_many(&ctx),
        Err(e) => return ctx.fail(e),
    }
    reauth.password_ok = true;
    ctx.session.data.reauth = Some(reauth);
    ctx.redirect(CODE_PATH).await
}

/// `again`: the confirm page, still coming back to where the citizen was.
fn code_form(masked: &str, again: &str) -> Form {
    Form::new("Enter the security code", CODE_PATH, "Continue")
        .intro(format!("We have sent a 6-digit code to your mobile phone number ending {masked}. The code expires after 10 minutes."))
        .field(Field::new("code", "Security code", "text", "one-time-code").hint("For example, 123456"))
        .link(again, "Not received a code? Enter your password again to get a new one")
        .back(again)
}

/// Back to the password step of the confirmation in progress (or a new one for Settings).
fn restart(reauth: Option<&Reauth>) -> String {
    reauth.map(|r| confirm_url(&r.next)).unwrap_or_else(|| CONFIRM_PATH.to_string())
}

fn masked(account: &AccountRecord) -> String {
    let m = account.mobile.as_deref().and_then(|m| domain::MobileNumber::parse(m).ok()).map(|m| m.masked()).unwrap_or_default();
    m.chars().skip(m.chars().count().saturating_sub(4)).collect()
}

pub async fn get_code(ctx: Ctx) -> Response {
    let (ctx, account) = match account(ctx, None).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let reauth = in_progress(&ctx, &account);
    let again = restart(reauth.as_ref());
    if !reauth.is_some_and(|r| r.password_ok) {
        return ctx.redirect(&again).await;
    }
    let page = ctx.page();
    ctx.finish(form(page, StatusCode::OK, code_form(&masked(&account), &again))).await
}

/// The SMS code step, limited and locked exactly like the sign-in code.
pub async fn post_code(ctx: Ctx, body: Bytes) -> Response {
    let data = match posted(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let (ctx, account) = match account(ctx, None).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let reauth = in_progress(&ctx, &account);
    let again = restart(reauth.as_ref());
    let Some(reauth) = reauth.filter(|r| r.password_ok) else { return ctx.redirect(&again).await };
    match limits::per_ip(&ctx.state, "code", &ctx.ip).await {
        Ok(Limit::Allowed) => {}
        Ok(Limit::Exceeded) => return too_many(&ctx),
        Err(e) => return ctx.fail(e),
    }
    let masked = masked(&account);
    let entered = data.trimmed("code");
    if entered.len() != 6 || !entered.chars().all(|c| c.is_ascii_digit()) {
        return form(ctx.page(), StatusCode::BAD_REQUEST, code_form(&masked, &again).error("code", "Enter the 6-digit security code"));
    }
    match codes::check(&ctx.state, Purpose::Reauth, &account.id, entered).await {
        Err(e) => ctx.fail(e),
        Ok(CodeCheck::Accepted) => confirmed(ctx, reauth, "Cp.Cd").await,
        Ok(CodeCheck::Wrong { remaining }) => form(
            ctx.page(),
            StatusCode::UNAUTHORIZED,
            code_form(&masked, &again).error("code", format!("The security code is not correct. {}", CodeCheck::tries_left(remaining))),
        ),
        Ok(CodeCheck::Malformed) => form(ctx.page(), StatusCode::BAD_REQUEST, code_form(&masked, &again).error("code", "Enter the 6-digit security code")),
        Ok(CodeCheck::Expired) => {
            form(ctx.page(), StatusCode::UNAUTHORIZED, code_form(&masked, &again).error("code", "The security code has expired. Enter your password again to get a new code."))
        }
        Ok(CodeCheck::TooManyAttempts) => {
            let now = clock::now_ms();
            if let Err(e) = ctx.state.db.lock_account(&account.id, now + ctx.state.settings.limits.lockout, now).await {
                return ctx.fail(e);
            }
            audit(&ctx.state, "reauth.locked_wrong_codes", Some(&account.id), &ctx.ip, json!({})).await;
            locked(ctx).await
        }
    }
}

/// The credential is fresh from now: a new session id (ASVS 7.2.4), then back to `next`.
async fn confirmed(mut ctx: Ctx, reauth: Reauth, method: &str) -> Response {
    mark_fresh(&mut ctx, method).await;
    ctx.redirect(&reauth.next).await
}

/// Records a confirmation in the session: rotated, fresh, the confirmation ended.
pub async fn mark_fresh(ctx: &mut Ctx, method: &str) {
    ctx.session.rotate();
    ctx.session.data.reauth = None;
    let now = clock::now_ms();
    let account_id = ctx.session.data.auth.as_mut().map(|auth| {
        auth.fresh_at = Some(now / 1000);
        auth.account_id.clone()
    });
    audit(&ctx.state, "reauth.succeeded", account_id.as_deref(), &ctx.ip, json!({ "credentials": method })).await;
}

/// For the passkey ceremony: the account a confirmation in progress is for, and where it goes.
pub fn passkey_target(ctx: &Ctx) -> Option<Reauth> {
    let signed_in = ctx.session.account_id()?;
    ctx.session.data.reauth.clone().filter(|r| r.account_id == signed_in)
}

fn too_many(ctx: &Ctx) -> Response {
    message(
        ctx.page(),
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        &["For your security, you need to wait before trying again. Try again in 15 minutes."],
        None,
    )
}

async fn locked(mut ctx: Ctx) -> Response {
    ctx.session.data.reauth = None;
    let page = ctx.page();
    let response = message(
        page,
        StatusCode::FORBIDDEN,
        "Your account is locked",
        &[
            "You entered incorrect details too many times, so we have locked your account for 15 minutes to keep it safe.",
            "You can reset your password if you have forgotten it.",
        ],
        Some(("/forgot-password", "Reset your password")),
    );
    ctx.finish(response).await
}
