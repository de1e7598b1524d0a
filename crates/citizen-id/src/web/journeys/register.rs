//! Registration (F3): email (verified by a code), password (strength-checked), mobile
//! (verified by an SMS code). The account is written only at the last step, whole.
//! The first page answers the same whether or not the email is already registered: the owner
//! of an existing account is emailed instead of being shown that it exists.
//! Instead of a password a citizen may choose a passkey (F9): the mobile is still verified (it
//! is how a lost device is recovered), the account is written without a password, and its
//! first passkey is made next (`passkey_pages.rs`). With a password, a passkey is offered
//! before the partner flow goes on.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use domain::{Email, MobileNumber};

use super::signin::establish;
use crate::accounts::codes::{self, Purpose, Recipient, SendOutcome};
use crate::accounts::journey::Journey;
use crate::accounts::limits::{self, Limit};
use crate::accounts::messages::{Template, compose};
use crate::accounts::signin::create_account;
use crate::clock;
use crate::crypto::{password, random_token};
use crate::store::codes::CodeCheck;
use crate::web::ctx::Ctx;
use crate::web::forms::{self, FormData, check_csrf, csrf_failure};
use crate::web::pages::{Field, Form, form, message};

fn email_form() -> Form {
    Form::new("Create your Citizen ID account", "/register", "Continue")
        .intro("Enter your email address. We will send you a code to check it is yours.")
        .field(Field::new("email", "Email address", "email", "email"))
        .link("/signin", "I already have an account")
}

fn email_code_form(email: &str) -> Form {
    Form::new("Check your email", "/register/email-code", "Continue")
        .intro(format!("We have sent a 6-digit security code to {email}. The code expires after 10 minutes."))
        .field(Field::new("code", "Security code", "text", "one-time-code").hint("For example, 123456"))
        .back("/register")
}

fn password_form() -> Form {
    Form::new("Create a password", "/register/password", "Continue")
        .intro("Use at least 8 characters. A few unrelated words together make a strong password that is easy to remember.")
        .field(Field::new("password", "Password", "password", "new-password"))
        .field(Field::new("confirm", "Confirm your password", "password", "new-password"))
        .link("/register/passkey-instead", "Create a passkey instead of a password")
}

fn mobile_form() -> Form {
    Form::new("Enter your mobile phone number", "/register/mobile", "Continue")
        .intro("We will send a security code to this number each time you sign in.")
        .field(Field::new("mobile", "UK mobile phone number", "tel", "tel").hint("For example, 07700 900 982"))
}

fn mobile_code_form(masked: &str) -> Form {
    Form::new("Check your phone", "/register/mobile-code", "Continue")
        .intro(format!("We have sent a 6-digit security code to your mobile phone number ending {masked}."))
        .field(Field::new("code", "Security code", "text", "one-time-code").hint("For example, 123456"))
        .back("/register/mobile")
}

async fn parse_form(ctx: &Ctx, body: &Bytes) -> Result<FormData, Response> {
    let data = forms::parse(&ctx.page(), body)?;
    if !check_csrf(&ctx.session, &data, &ctx.headers, &ctx.state.settings.issuer) {
        return Err(csrf_failure(ctx.page()));
    }
    match limits::per_ip(&ctx.state, "register", &ctx.ip).await {
        Ok(Limit::Allowed) => Ok(data),
        Ok(Limit::Exceeded) => Err(message(ctx.page(), StatusCode::TOO_MANY_REQUESTS, "Too many attempts", &["Wait a few minutes, then try again."], None)),
        Err(e) => Err(ctx.fail(e)),
    }
}

pub async fn get_email(ctx: Ctx) -> Response {
    if ctx.session.data.pending.as_ref().is_some_and(|p| !p.allow_registration) {
        return ctx.redirect("/signin").await;
    }
    let page = ctx.page();
    ctx.finish(form(page, StatusCode::OK, email_form())).await
}

pub async fn post_email(mut ctx: Ctx, body: Bytes) -> Response {
    let data = match parse_form(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let Ok(email) = Email::parse(data.trimmed("email")) else {
        let f = email_form().error("email", "Enter an email address in the correct format, like name@example.com");
        return form(ctx.page(), StatusCode::BAD_REQUEST, f);
    };
    let id = random_token(16);
    let existing = match ctx.state.db.account_by_email(email.as_str()).await {
        Ok(a) => a,
        Err(e) => return ctx.fail(e),
    };
    // For an existing account the owner is told instead of sent a code: a code is stored but
    // withheld, counted against the same caps, so the next page behaves exactly as for a new
    // email.
    let to = if existing.is_some() { Recipient::Withheld(email.as_str()) } else { Recipient::To(email.as_str()) };
    match codes::send(&ctx.state, Purpose::VerifyEmail, &id, to, &ctx.ip).await {
        Ok(SendOutcome::Sent) => {}
        Ok(SendOutcome::TooMany) => return super::too_many_messages(&ctx),
        Err(e) => return ctx.fail(e),
    }
    if existing.is_some() {
        let note = compose(&ctx.state.kek, Template::AccountAlreadyExists, email.as_str(), serde_json::json!({}));
        if let Err(e) = ctx.state.db.enqueue(&note, clock::now_ms()).await {
            return ctx.fail(e);
        }
    }
    ctx.session.data.journey =
        Some(Journey::Register { id, email: email.as_str().to_string(), email_verified: false, password_hash: None, mobile: None, passwordless: false });
    ctx.redirect("/register/email-code").await
}

pub async fn get_email_code(ctx: Ctx) -> Response {
    let Some(Journey::Register { email, .. }) = ctx.session.data.journey.clone() else { return ctx.redirect("/register").await };
    let page = ctx.page();
    ctx.finish(form(page, StatusCode::OK, email_code_form(&email))).await
}

/// Maps a code check to the page's error, or `None` when accepted.
fn code_error(check: &CodeCheck) -> Option<String> {
    match check {
        CodeCheck::Accepted => None,
        CodeCheck::Wrong { remaining } => Some(format!("The security code is not correct. {}", CodeCheck::tries_left(*remaining))),
        CodeCheck::Malformed => Some("Enter the 6-digit security code".into()),
        CodeCheck::Expired => Some("The security code has expired. Go back to get a new code.".into()),
        CodeCheck::TooManyAttempts => Some("You entered the wrong code too many times. Go back to get a new code.".into()),
    }
}

pub async fn post_email_code(mut ctx: Ctx, body: Bytes) -> Response {
    let data = match parse_form(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let Some(Journey::Register { id, email, .. }) = ctx.session.data.journey.clone() else { return ctx.redirect("/register").await };
    let check = match codes::check(&ctx.state, Purpose::VerifyEmail, &id, data.trimmed("code")).await {
        Ok(c) => c,
        Err(e) => return ctx.fail(e),
    };
    if let Some(err) = code_error(&check) {
        return form(ctx.page(), StatusCode::UNAUTHORIZED, email_code_form(&email).error("code", err));
    }
    if let Some(Journey::Register { email_verified, .. }) = ctx.session.data.journey.as_mut() {
        *email_verified = true;
    }
    ctx.redirect("/register/password").await
}

pub async fn get_password(ctx: Ctx) -> Response {
    if !matches!(ctx.session.data.journey, Some(Journey::Register { email_verified: true, .. })) {
        return ctx.redirect("/register").await;
    }
    let page = ctx.page();
    ctx.finish(form(page, StatusCode::OK, password_form())).await
}

pub async fn post_password(mut ctx: Ctx, body: Bytes) -> Response {
    let data = match parse_form(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let Some(Journey::Register { email_verified: true, email, .. }) = ctx.session.data.journey.clone() else {
        return ctx.redirect("/register").await;
    };
    let hash = match password::choose(data.get("password"), data.get("confirm"), &[&email]).await {
        Ok(h) => h,
        Err(password::NewPasswordError::Refused { field, message }) => {
            return form(ctx.page(), StatusCode::BAD_REQUEST, password_form().error(field, message));
        }
        Err(password::NewPasswordError::Internal(e)) => return ctx.fail(e),
    };
    if let Some(Journey::Register { password_hash, passwordless, .. }) = ctx.session.data.journey.as_mut() {
        *password_hash = Some(hash);
        *passwordless = false; // came back from the passkey choice and set a password after all
    }
    ctx.redirect("/register/mobile").await
}

/// The password step is done: a password was set, or a passkey chosen instead.
fn credential_chosen(journey: &Option<Journey>) -> bool {
    matches!(journey, Some(Journey::Register { password_hash: Some(_), .. } | Journey::Register { passwordless: true, .. }))
}

pub async fn get_mobile(ctx: Ctx) -> Response {
    if !credential_chosen(&ctx.session.data.journey) {
        return ctx.redirect("/register").await;
    }
    let page = ctx.page();
    ctx.finish(form(page, StatusCode::OK, mobile_form())).await
}

pub async fn post_mobile(mut ctx: Ctx, body: Bytes) -> Response {
    let data = match parse_form(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let Some(Journey::Register { id, .. }) = ctx.session.data.journey.clone().filter(|_| credential_chosen(&ctx.session.data.journey)) else {
        return ctx.redirect("/register").await;
    };
    let mobile = match MobileNumber::parse(data.trimmed("mobile")) {
        Ok(m) => m,
        Err(e) => return form(ctx.page(), StatusCode::BAD_REQUEST, mobile_form().error("mobile", e.to_string())),
    };
    match codes::send(&ctx.state, Purpose::VerifyMobile, &id, Recipient::To(mobile.as_str()), &ctx.ip).await {
        Ok(SendOutcome::Sent) => {}
        Ok(SendOutcome::TooMany) => {
            return form(ctx.page(), StatusCode::TOO_MANY_REQUESTS, mobile_form().error("mobile", "Too many codes sent. Wait an hour, then try again."));
        }
        Err(e) => return ctx.fail(e),
    }
    if let Some(Journey::Register { mobile: m, .. }) = ctx.session.data.journey.as_mut() {
        *m = Some(mobile.as_str().to_string());
    }
    ctx.redirect("/register/mobile-code").await
}

pub async fn get_mobile_code(ctx: Ctx) -> Response {
    let Some(Journey::Register { mobile: Some(m), .. }) = ctx.session.data.journey.clone() else { return ctx.redirect("/register").await };
    let masked = MobileNumber::parse(&m).map(|m| m.national()).unwrap_or_default();
    let page = ctx.page();
    ctx.finish(form(page, StatusCode::OK, mobile_code_form(&masked[masked.len().saturating_sub(4)..]))).await
}

pub async fn post_mobile_code(mut ctx: Ctx, body: Bytes) -> Response {
    let data = match parse_form(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let Some(Journey::Register { id, email, email_verified: true, password_hash: hash, mobile: Some(mobile), passwordless }) =
        ctx.session.data.journey.clone().filter(|_| credential_chosen(&ctx.session.data.journey))
    else {
        return ctx.redirect("/register").await;
    };
    let check = match codes::check(&ctx.state, Purpose::VerifyMobile, &id, data.trimmed("code")).await {
        Ok(c) => c,
        Err(e) => return ctx.fail(e),
    };
    if let Some(err) = code_error(&check) {
        let masked = &mobile[mobile.len().saturating_sub(4)..];
        return form(ctx.page(), StatusCode::UNAUTHORIZED, mobile_code_form(masked).error("code", err));
    }
    let (Ok(email), Ok(mobile)) = (Email::parse(&email), MobileNumber::parse(&mobile)) else { return ctx.redirect("/register").await };
    let hash = if passwordless { None } else { hash };
    match create_account(&ctx.state, &email, hash, &mobile, &ctx.ip).await {
        // Passwordless: the first passkey is next, and only it signs the citizen in.
        Ok(Some(account_id)) if passwordless => {
            ctx.session.data.journey = Some(Journey::PasskeySetup { account_id });
            ctx.redirect("/register/create-passkey").await
        }
        // With a password: signed in (`Cp.Cd`), then offered a passkey before going on.
        Ok(Some(account_id)) => {
            ctx.session.data.journey = None;
            // Fresh: the password was just chosen and the mobile verified with a code here.
            if let Err(e) = establish(&mut ctx, &account_id, &["Cp", "Cd"], true).await {
                return ctx.fail(e);
            }
            ctx.redirect("/register/passkey-offer").await
        }
        Ok(None) => {
            ctx.session.data.journey = None;
            let page = ctx.page();
            ctx.finish(message(
                page,
                StatusCode::CONFLICT,
                "You already have an account",
                &["An account with this email address already exists. Sign in instead, or reset your password if you have forgotten it."],
                Some(("/signin", "Sign in")),
            ))
            .await
        }
        Err(e) => ctx.fail(e),
    }
}
