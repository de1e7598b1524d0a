//! Forgotten password (F3): a code to the email, then a code to the mobile (two factors, as at
//! sign-in), then a new password. The first page answers the same for unknown emails.
//! Setting the password ends every session and remembered browser of the account.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use domain::Email;

use crate::accounts::codes::{self, Purpose, Recipient, SendOutcome};
use crate::accounts::journey::Journey;
use crate::accounts::limits::{self, Limit};
use crate::accounts::messages::{Template, notice};
use crate::accounts::signin::audit;
use crate::clock;
use crate::crypto::{password, random_token};
use crate::store::codes::CodeCheck;
use crate::web::ctx::Ctx;
use crate::web::forms::{self, FormData, check_csrf, csrf_failure};
use crate::web::pages::{Field, Form, form, message};

fn email_form() -> Form {
    Form::new("Reset your password", "/forgot-password", "Continue")
        .intro("Enter the email address you use to sign in. If it has an account, we will send a code to it.")
        .field(Field::new("email", "Email address", "email", "email"))
}

fn code_form(action: &'static str, intro: &str) -> Form {
    Form::new("Enter the security code", action, "Continue")
        .intro(intro.to_string())
        .field(Field::new("code", "Security code", "text", "one-time-code").hint("For example, 123456"))
        .link("/forgot-password", "Start again")
}

const EMAIL_INTRO: &str = "If this email address has an account, we have sent a 6-digit code to it. The code expires after 10 minutes.";
const SMS_INTRO: &str = "We have sent a 6-digit code to the mobile phone number on your account.";

fn password_form() -> Form {
    Form::new("Create a new password", "/forgot-password/new-password", "Save password")
        .field(Field::new("password", "New password", "password", "new-password"))
        .field(Field::new("confirm", "Confirm your new password", "password", "new-password"))
        // Recovery for a lost device (F9): a new passkey instead of a password.
        .link("/forgot-password/passkey", "Create a new passkey instead")
}

async fn parse_form(ctx: &Ctx, body: &Bytes) -> Result<FormData, Response> {
    let data = forms::parse(&ctx.page(), body)?;
    if !check_csrf(&ctx.session, &data, &ctx.headers, &ctx.state.settings.issuer) {
        return Err(csrf_failure(ctx.page()));
    }
    match limits::per_ip(&ctx.state, "reset", &ctx.ip).await {
        Ok(Limit::Allowed) => Ok(data),
        Ok(Limit::Exceeded) => Err(message(ctx.page(), StatusCode::TOO_MANY_REQUESTS, "Too many attempts", &["Wait a few minutes, then try again."], None)),
        Err(e) => Err(ctx.fail(e)),
    }
}

pub async fn get_email(ctx: Ctx) -> Response {
    let page = ctx.page();
    ctx.finish(form(page, StatusCode::OK, email_form())).await
}

pub async fn post_email(mut ctx: Ctx, body: Bytes) -> Response {
    let data = match parse_form(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let Ok(email) = Email::parse(data.trimmed("email")) else {
        return form(ctx.page(), StatusCode::BAD_REQUEST, email_form().error("email", "Enter an email address in the correct format, like name@example.com"));
    };
    let account = match ctx.state.db.account_by_email(email.as_str()).await {
        Ok(a) => a,
        Err(e) => return ctx.fail(e),
    };
    let id = random_token(16);
    let to = if account.is_some() { Recipient::To(email.as_str()) } else { Recipient::Withheld(email.as_str()) };
    match codes::send(&ctx.state, Purpose::ResetEmail, &id, to, &ctx.ip).await {
        Ok(SendOutcome::Sent) => {}
        Ok(SendOutcome::TooMany) => return super::too_many_messages(&ctx),
        Err(e) => return ctx.fail(e),
    }
    ctx.session.data.journey = Some(Journey::Reset {
        id,
        email: email.as_str().to_string(),
        account_id: account.map(|a| a.id),
        email_verified: false,
        mobile_verified: false,
    });
    ctx.redirect("/forgot-password/code").await
}

pub async fn get_code(ctx: Ctx) -> Response {
    if !matches!(ctx.session.data.journey, Some(Journey::Reset { .. })) {
        return ctx.redirect("/forgot-password").await;
    }
    let page = ctx.page();
    ctx.finish(form(page, StatusCode::OK, code_form("/forgot-password/code", EMAIL_INTRO))).await
}

fn wrong(check: &CodeCheck) -> Option<String> {
    match check {
        CodeCheck::Accepted => None,
        CodeCheck::Wrong { remaining } => Some(format!("The security code is not correct. {}", CodeCheck::tries_left(*remaining))),
        CodeCheck::Malformed => Some("Enter the 6-digit security code".into()),
        CodeCheck::Expired | CodeCheck::TooManyAttempts => Some("The security code has expired or been used too many times. Start again.".into()),
    }
}

pub async fn post_code(mut ctx: Ctx, body: Bytes) -> Response {
    let data = match parse_form(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let Some(Journey::Reset { id, account_id, .. }) = ctx.session.data.journey.clone() else { return ctx.redirect("/forgot-password").await };
    let check = match codes::check(&ctx.state, Purpose::ResetEmail, &id, data.trimmed("code")).await {
        Ok(c) => c,
        Err(e) => return ctx.fail(e),
    };
    if let Some(err) = wrong(&check) {
        return form(ctx.page(), StatusCode::UNAUTHORIZED, code_form("/forgot-password/code", EMAIL_INTRO).error("code", err));
    }
    // A correct code proves the email; only then can an account exist behind it.
    let Some(account_id) = account_id else { return ctx.redirect("/forgot-password").await };
    let mobile = match ctx.state.db.account(&account_id).await {
        Ok(a) => a.and_then(|a| a.mobile),
        Err(e) => return ctx.fail(e),
    };
    let to = mobile.as_deref().map_or(Recipient::Nowhere, Recipient::To);
    match codes::send(&ctx.state, Purpose::ResetMobile, &id, to, &ctx.ip).await {
        Ok(SendOutcome::Sent) => {}
        Ok(SendOutcome::TooMany) => return super::too_many_messages(&ctx),
        Err(e) => return ctx.fail(e),
    }
    if let Some(Journey::Reset { email_verified, .. }) = ctx.session.data.journey.as_mut() {
        *email_verified = true;
    }
    ctx.redirect("/forgot-password/sms-code").await
}

pub async fn get_sms_code(ctx: Ctx) -> Response {
    if !matches!(ctx.session.data.journey, Some(Journey::Reset { email_verified: true, .. })) {
        return ctx.redirect("/forgot-password").await;
    }
    let page = ctx.page();
    ctx.finish(form(page, StatusCode::OK, code_form("/forgot-password/sms-code", SMS_INTRO))).await
}

pub async fn post_sms_code(mut ctx: Ctx, body: Bytes) -> Response {
    let data = match parse_form(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let Some(Journey::Reset { id, email_verified: true, .. }) = ctx.session.data.journey.clone() else {
        return ctx.redirect("/forgot-password").await;
    };
    let check = match codes::check(&ctx.state, Purpose::ResetMobile, &id, data.trimmed("code")).await {
        Ok(c) => c,
        Err(e) => return ctx.fail(e),
    };
    if let Some(err) = wrong(&check) {
        return form(ctx.page(), StatusCode::UNAUTHORIZED, code_form("/forgot-password/sms-code", SMS_INTRO).error("code", err));
    }
    if let Some(Journey::Reset { mobile_verified, .. }) = ctx.session.data.journey.as_mut() {
        *mobile_verified = true;
    }
    ctx.redirect("/forgot-password/new-password").await
}

pub async fn get_new_password(ctx: Ctx) -> Response {
    if !matches!(ctx.session.data.journey, Some(Journey::Reset { mobile_verified: true, .. })) {
        return ctx.redirect("/forgot-password").await;
    }
    let page = ctx.page();
    ctx.finish(form(page, StatusCode::OK, password_form())).await
}

pub async fn post_new_password(mut ctx: Ctx, body: Bytes) -> Response {
    let data = match parse_form(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let Some(Journey::Reset { email, account_id: Some(account_id), mobile_verified: true, .. }) = ctx.session.data.journey.clone() else {
        return ctx.redirect("/forgot-password").await;
    };
    let hash = match password::choose(data.get("password"), data.get("confirm"), &[&email]).await {
        Ok(h) => h,
        Err(password::NewPasswordError::Refused { field, message }) => {
            return form(ctx.page(), StatusCode::BAD_REQUEST, password_form().error(field, message));
        }
        Err(password::NewPasswordError::Internal(e)) => return ctx.fail(e),
    };
    let now = clock::now_ms();
    let changed = notice(&ctx.state, Template::PasswordChanged, &email, serde_json::json!({}));
    if let Err(e) = ctx.state.db.set_password(&account_id, &hash, now, Some(&changed)).await {
        return ctx.fail(e);
    }
    audit(&ctx.state, "account.password_reset", Some(&account_id), &ctx.ip, serde_json::json!({})).await;
    ctx.session.clear();
    let page = ctx.page();
    ctx.finish(message(
        page,
        StatusCode::OK,
        "Your password has been changed",
        &["You have been signed out everywhere. Sign in with your new password."],
        Some(("/signin", "Sign in")),
    ))
    .await
}
