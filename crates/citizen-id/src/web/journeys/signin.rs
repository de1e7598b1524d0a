//! Sign in (F3): email and password, then an SMS code (`Cp.Cd`), or a remembered browser as
//! the `Cd` device. The session id is rotated on success. The page also offers passkeys (`Cm`,
//! `passkeys.rs`), which sign in through the same [`establish`].

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use domain::{Email, MobileNumber};

use super::authorize::resume;
use super::passkey_pages::signin_page;
use crate::accounts::codes::{self, Purpose, Recipient, SendOutcome};
use crate::accounts::journey::Journey;
use crate::accounts::limits::{self, Limit};
use crate::accounts::signin::{PasswordOutcome, audit, check_password, unlock};
use crate::clock;
use crate::crypto::{random_token, sha256_hex};
use crate::store::StoreError;
use crate::store::codes::CodeCheck;
use crate::web::ctx::Ctx;
use crate::web::forms::{self, check_csrf, csrf_failure};
use crate::web::pages::{Field, Form, form, message};
use crate::web::session::{Authenticated, cookie_header, read_cookie, with_cookie};

const WRONG: &str = "Enter a correct email address and password";

fn device_cookie(secure: bool) -> &'static str {
    if secure { "__Host-cid_device" } else { "cid_device" }
}

fn signin_form(ctx: &Ctx) -> Form {
    let allow_registration = ctx.session.data.pending.as_ref().is_none_or(|p| p.allow_registration);
    let f = Form::new("Sign in", "/signin", "Continue")
        // "webauthn" lets the browser offer passkeys in the email field's autofill (conditional UI).
        .field(Field::new("email", "Email address", "email", "username webauthn"))
        .field(Field::new("password", "Password", "password", "current-password"))
        .link("/forgot-password", "Forgotten your password?");
    if allow_registration { f.link("/register", "Create an account") } else { f }
}

pub async fn get_signin(ctx: Ctx) -> Response {
    let page = ctx.page();
    let f = signin_form(&ctx);
    ctx.finish(signin_page(page, StatusCode::OK, f)).await
}

pub async fn post_signin(mut ctx: Ctx, body: Bytes) -> Response {
    let data = match forms::parse(&ctx.page(), &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if !check_csrf(&ctx.session, &data, &ctx.headers, &ctx.state.settings.issuer) {
        return csrf_failure(ctx.page());
    }
    let email_input = data.trimmed("email").to_string();
    let again = |ctx: &Ctx, field: &str, msg: &str, status| {
        let f = signin_form(ctx);
        let f = Form { fields: f.fields.into_iter().map(|x| if x.name == "email" { x.value(email_input.clone()) } else { x }).collect(), ..f };
        signin_page(ctx.page(), status, f.error(field, msg))
    };
    let Ok(email) = Email::parse(&email_input) else {
        return again(&ctx, "email", "Enter an email address in the correct format, like name@example.com", StatusCode::BAD_REQUEST);
    };
    if data.get("password").is_empty() {
        return again(&ctx, "password", "Enter your password", StatusCode::BAD_REQUEST);
    }
    // Per IP over every email (spraying); per email and IP, and per email, in check_password
    // (accounts::throttle). No per-account lock a stranger could set off.
    match limits::per_ip(&ctx.state, "signin", &ctx.ip).await {
        Ok(Limit::Allowed) => {}
        Ok(Limit::Exceeded) => return too_many(&ctx),
        Err(e) => return ctx.fail(e),
    }
    let outcome = match check_password(&ctx.state, &email, data.get("password"), &ctx.ip).await {
        Ok(o) => o,
        Err(e) => return ctx.fail(e),
    };
    let account = match outcome {
        PasswordOutcome::Accepted(a) => a,
        PasswordOutcome::Rejected => return again(&ctx, "password", WRONG, StatusCode::UNAUTHORIZED),
        PasswordOutcome::Wait(ms) => return wait(&ctx, ms),
        PasswordOutcome::CheckEmail => return check_email(&ctx),
        PasswordOutcome::Locked => return locked(&ctx),
    };
    // A remembered browser is the registered device: no SMS code needed.
    let now = clock::now_ms();
    if let Some(token) = read_cookie(&ctx.headers, device_cookie(ctx.state.settings.secure_cookies())) {
        match ctx.state.db.is_remembered_device(&sha256_hex(token), &account.id, now).await {
            // The cookie stands in for the SMS code: signed in, but not fresh (ASVS 7.5).
            Ok(true) => return complete(ctx, account.id.clone(), &["Cp", "Cd"], false, false).await,
            Ok(false) => {}
            Err(e) => return ctx.fail(e),
        }
    }
    let Some(mobile) = account.mobile.clone() else { return ctx.fail("account has no mobile") };
    match codes::send(&ctx.state, Purpose::SignIn, &account.id, Recipient::To(&mobile), &ctx.ip).await {
        Ok(SendOutcome::Sent) => {}
        Ok(SendOutcome::TooMany) => return too_many(&ctx),
        Err(e) => return ctx.fail(e),
    }
    ctx.session.data.journey = Some(Journey::SignIn { account_id: account.id.clone() });
    ctx.redirect("/signin/code").await
}

fn code_form(masked_mobile: &str) -> Form {
    Form::new("Enter the security code", "/signin/code", "Continue")
        .intro(format!("We have sent a 6-digit code to your mobile phone number ending {masked_mobile}. The code expires after 10 minutes."))
        .field(Field::new("code", "Security code", "text", "one-time-code").hint("For example, 123456"))
        .checkbox("Remember this browser for 30 days so you do not need a code next time")
        .secondary("/signin/code/resend", "Send a new code")
}

async fn masked_mobile(ctx: &Ctx, account_id: &str) -> String {
    match ctx.state.db.account(account_id).await {
        Ok(Some(a)) => a.mobile.and_then(|m| MobileNumber::parse(&m).ok()).map(|m| m.masked()).unwrap_or_default(),
        _ => String::new(),
    }
    .chars()
    .rev()
    .take(4)
    .collect::<Vec<_>>()
    .into_iter()
    .rev()
    .collect()
}

pub async fn get_code(ctx: Ctx) -> Response {
    let Some(Journey::SignIn { account_id }) = ctx.session.data.journey.clone() else { return ctx.redirect("/signin").await };
    let masked = masked_mobile(&ctx, &account_id).await;
    let page = ctx.page();
    ctx.finish(form(page, StatusCode::OK, code_form(&masked))).await
}

/// "Send a new code": a POST with the CSRF token, so no link on another site can send texts.
pub async fn post_resend(ctx: Ctx, body: Bytes) -> Response {
    let data = match forms::parse(&ctx.page(), &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if !check_csrf(&ctx.session, &data, &ctx.headers, &ctx.state.settings.issuer) {
        return csrf_failure(ctx.page());
    }
    let Some(Journey::SignIn { account_id }) = ctx.session.data.journey.clone() else { return ctx.redirect("/signin").await };
    let mobile = match ctx.state.db.account(&account_id).await {
        Ok(Some(a)) => a.mobile,
        Ok(None) => None,
        Err(e) => return ctx.fail(e),
    };
    let to = mobile.as_deref().map_or(Recipient::Nowhere, Recipient::To);
    match codes::send(&ctx.state, Purpose::SignIn, &account_id, to, &ctx.ip).await {
        Ok(SendOutcome::Sent) => ctx.redirect("/signin/code").await,
        Ok(SendOutcome::TooMany) => too_many(&ctx),
        Err(e) => ctx.fail(e),
    }
}

pub async fn post_code(mut ctx: Ctx, body: Bytes) -> Response {
    let data = match forms::parse(&ctx.page(), &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if !check_csrf(&ctx.session, &data, &ctx.headers, &ctx.state.settings.issuer) {
        return csrf_failure(ctx.page());
    }
    let Some(Journey::SignIn { account_id }) = ctx.session.data.journey.clone() else { return ctx.redirect("/signin").await };
    match limits::per_ip(&ctx.state, "code", &ctx.ip).await {
        Ok(Limit::Allowed) => {}
        Ok(Limit::Exceeded) => return too_many(&ctx),
        Err(e) => return ctx.fail(e),
    }
    let masked = masked_mobile(&ctx, &account_id).await;
    let entered = data.trimmed("code");
    if entered.len() != 6 || !entered.chars().all(|c| c.is_ascii_digit()) {
        return form(ctx.page(), StatusCode::BAD_REQUEST, code_form(&masked).error("code", "Enter the 6-digit security code"));
    }
    match codes::check(&ctx.state, Purpose::SignIn, &account_id, entered).await {
        Err(e) => ctx.fail(e),
        Ok(CodeCheck::Accepted) => {
            ctx.session.data.journey = None;
            complete(ctx, account_id, &["Cp", "Cd"], true, data.checked("remember")).await
        }
        Ok(CodeCheck::Wrong { remaining }) => form(
            ctx.page(),
            StatusCode::UNAUTHORIZED,
            code_form(&masked).error("code", format!("The security code is not correct. {}", CodeCheck::tries_left(remaining))),
        ),
        Ok(CodeCheck::Malformed) => form(ctx.page(), StatusCode::BAD_REQUEST, code_form(&masked).error("code", "Enter the 6-digit security code")),
        Ok(CodeCheck::Expired) => form(
            ctx.page(),
            StatusCode::UNAUTHORIZED,
            code_form(&masked).error("code", "The security code has expired. Send a new code."),
        ),
        Ok(CodeCheck::TooManyAttempts) => {
            let now = clock::now_ms();
            if let Err(e) = ctx.state.db.lock_account(&account_id, now + ctx.state.settings.limits.lockout, now).await {
                return ctx.fail(e);
            }
            audit(&ctx.state, "signin.locked_wrong_codes", Some(&account_id), &ctx.ip, serde_json::json!({})).await;
            ctx.session.data.journey = None;
            let response = locked(&ctx);
            ctx.finish(response).await
        }
    }
}

/// Makes `account_id` the session's citizen, signed in with `credentials` ("Cp", "Cd", "Cm"):
/// records the sign-in, audits it and rotates the session id (session fixation). `fresh`: the
/// password and an SMS code, or a passkey, were presented in this browser just now (not a
/// remembered device), which lets it make sensitive changes for a while (`reauth.rs`).
pub async fn establish(ctx: &mut Ctx, account_id: &str, credentials: &[&str], fresh: bool) -> Result<(), StoreError> {
    let now = clock::now_ms();
    ctx.state.db.record_successful_sign_in(account_id, now).await?;
    audit(&ctx.state, "signin.succeeded", Some(account_id), &ctx.ip, serde_json::json!({ "credentials": credentials.join(".") })).await;
    ctx.session.rotate();
    let credentials = credentials.iter().map(|c| c.to_string()).collect();
    ctx.session.data.signed_in(Authenticated { account_id: account_id.to_string(), auth_time: now / 1000, credentials, fresh_at: fresh.then_some(now / 1000) });
    Ok(())
}

/// Signs the citizen in (see [`establish`]), remembers the browser if asked, and carries on
/// with the partner request.
pub async fn complete(mut ctx: Ctx, account_id: String, credentials: &[&str], fresh: bool, remember: bool) -> Response {
    let now = clock::now_ms();
    if let Err(e) = establish(&mut ctx, &account_id, credentials, fresh).await {
        return ctx.fail(e);
    }
    let mut device = None;
    if remember {
        let token = random_token(32);
        let limits = &ctx.state.settings.limits;
        if let Err(e) = ctx.state.db.remember_device(&sha256_hex(&token), &account_id, now, now + limits.remembered_device).await {
            return ctx.fail(e);
        }
        let name = device_cookie(ctx.state.settings.secure_cookies());
        device = Some(cookie_header(&ctx.state.settings, name, &token, limits.remembered_device / 1000));
    }
    let response = resume(ctx).await;
    match device {
        Some(cookie) => with_cookie(response, cookie),
        None => response,
    }
}

pub async fn post_sign_out(mut ctx: Ctx, body: Bytes) -> Response {
    let data = match forms::parse(&ctx.page(), &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if !check_csrf(&ctx.session, &data, &ctx.headers, &ctx.state.settings.issuer) {
        return csrf_failure(ctx.page());
    }
    ctx.session.clear();
    let page = ctx.page();
    ctx.finish(message(page, StatusCode::OK, "You have signed out", &["You are no longer signed in to Citizen ID on this device."], Some(("/signin", "Sign in again")))).await
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

/// Throttled for this email from this IP (`accounts::throttle` rule 2): the same whether the
/// email has an account or not.
fn wait(ctx: &Ctx, ms: i64) -> Response {
    let minutes = (ms + 59_999) / 60_000;
    let when = if minutes <= 1 { "1 minute".to_string() } else { format!("{minutes} minutes") };
    message(
        ctx.page(),
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        &[
            &format!("The email address or password was wrong too many times. For your security, wait {when} before trying again."),
            "If you have forgotten your password, you can reset it.",
        ],
        Some(("/forgot-password", "Reset your password")),
    )
}

/// The email's ceiling of wrong passwords (`accounts::throttle` rule 3): the same whether the
/// email has an account or not.
fn check_email(ctx: &Ctx) -> Response {
    message(
        ctx.page(),
        StatusCode::FORBIDDEN,
        "Check your email",
        &[
            "Someone has tried to sign in with this email address many times with the wrong password. To keep the account safe, we need to check it is you.",
            "If there is a Citizen ID account for this email address, we have sent it a link. Open the link, then sign in as usual.",
        ],
        None,
    )
}

/// The emailed link (`accounts::throttle` rule 3): a page with a button, so that opening the
/// link (or an email scanner fetching it) changes nothing by itself.
pub async fn get_unlock(mut ctx: Ctx, axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>) -> Response {
    let (Some(key), Some(token)) = (q.get("r"), q.get("t")) else { return ctx.redirect("/signin").await };
    ctx.session.data.journey = Some(Journey::Unlock { key: key.clone(), token: token.clone() });
    let page = ctx.page();
    let f = Form::new("Continue signing in", "/signin/unlock", "Continue").intro("Confirm it was you who asked to carry on signing in to Citizen ID.");
    ctx.finish(form(page, StatusCode::OK, f)).await
}

pub async fn post_unlock(mut ctx: Ctx, body: Bytes) -> Response {
    let data = match forms::parse(&ctx.page(), &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if !check_csrf(&ctx.session, &data, &ctx.headers, &ctx.state.settings.issuer) {
        return csrf_failure(ctx.page());
    }
    let Some(Journey::Unlock { key, token }) = ctx.session.data.journey.take() else { return ctx.redirect("/signin").await };
    let page = ctx.page();
    let response = match unlock(&ctx.state, &key, &token).await {
        Err(e) => return ctx.fail(e),
        Ok(true) => message(page, StatusCode::OK, "You can now sign in", &["Sign in with your email address, password and security code."], Some(("/signin", "Sign in"))),
        Ok(false) => message(
            page,
            StatusCode::BAD_REQUEST,
            "This link has expired",
            &["The link can only be used once, within an hour. Try to sign in again to get a new one."],
            Some(("/signin", "Sign in")),
        ),
    };
    ctx.finish(response).await
}

fn locked(ctx: &Ctx) -> Response {
    message(
        ctx.page(),
        StatusCode::FORBIDDEN,
        "Your account is locked",
        &[
            "You entered incorrect details too many times, so we have locked your account for 15 minutes to keep it safe.",
            "You can reset your password if you have forgotten it.",
        ],
        Some(("/forgot-password", "Reset your password")),
    )
}
