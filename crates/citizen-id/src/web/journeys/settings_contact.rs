//! Changing contact details and the password in Settings (F8). A new email or mobile is
//! verified with a code before it takes effect, and the old one is told. At P9 a new mobile
//! can be written to the NHS record (PDS) in the same journey: PDS first, so a PDS failure
//! leaves both unchanged.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use domain::{Email, LandlineNumber, MobileNumber, ProofingLevel};

use super::reauth::{EMAIL, EMAIL_CODE, EMAIL_PAGE, LANDLINE, LANDLINE_PAGE, MOBILE, MOBILE_CODE, MOBILE_PAGE, PASSWORD, PASSWORD_PAGE};
use super::settings::{posted, render_settings, signed_in_fresh, signed_in_form};
use crate::accounts::codes::{self, Purpose, SendOutcome};
use crate::accounts::journey::Journey;
use crate::accounts::messages::{Template, notice};
use crate::accounts::reauth::{CurrentPassword, check_current_password};
use crate::accounts::signin::audit;
use crate::clock;
use crate::crypto::{password, random_token};
use crate::oidc::claims::proofing_level;
use crate::store::StoreError;
use crate::store::codes::CodeCheck;
use crate::web::ctx::Ctx;
use crate::web::pages::{Field, Form, form, message};

fn code_error(check: &CodeCheck) -> Option<String> {
    match check {
        CodeCheck::Accepted => None,
        CodeCheck::Wrong { remaining } => Some(format!("The security code is not correct. {}", CodeCheck::tries_left(*remaining))),
        CodeCheck::Malformed => Some("Enter the 6-digit security code".into()),
        _ => Some("The security code has expired. Start again to get a new code.".into()),
    }
}

fn email_form() -> Form {
    Form::new("Change your email address", "/settings/email", "Continue")
        .intro("We will send a code to the new address. It takes effect once you enter the code.")
        .field(Field::new("email", "New email address", "email", "email"))
        .back("/settings")
}

fn code_form(action: &'static str, sent_to: &str) -> Form {
    Form::new("Enter the security code", action, "Continue")
        .intro(format!("We have sent a 6-digit code to {sent_to}."))
        .field(Field::new("code", "Security code", "text", "one-time-code").hint("For example, 123456"))
        .back("/settings")
}

pub async fn get_email(ctx: Ctx) -> Response {
    signed_in_form(ctx, &EMAIL_PAGE, email_form()).await
}

pub async fn post_email(ctx: Ctx, body: Bytes) -> Response {
    let data = match posted(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let (mut ctx, _) = match signed_in_fresh(ctx, &EMAIL).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(email) = Email::parse(data.trimmed("email")) else {
        return form(ctx.page(), StatusCode::BAD_REQUEST, email_form().error("email", "Enter an email address in the correct format, like name@example.com"));
    };
    let id = random_token(16);
    match codes::send(&ctx.state, Purpose::ChangeEmail, &id, codes::Recipient::To(email.as_str()), &ctx.ip).await {
        Ok(SendOutcome::Sent) => {}
        Ok(SendOutcome::TooMany) => return form(ctx.page(), StatusCode::TOO_MANY_REQUESTS, email_form().error("email", "Too many codes sent. Try again in an hour.")),
        Err(e) => return ctx.fail(e),
    }
    ctx.session.data.journey = Some(Journey::ChangeEmail { id, email: email.as_str().into() });
    let page = ctx.page();
    ctx.finish(form(page, StatusCode::OK, code_form("/settings/email/code", email.as_str()))).await
}

pub async fn post_email_code(ctx: Ctx, body: Bytes) -> Response {
    let data = match posted(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let (mut ctx, account) = match signed_in_fresh(ctx, &EMAIL_CODE).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(Journey::ChangeEmail { id, email }) = ctx.session.data.journey.clone() else { return ctx.redirect("/settings").await };
    let check = match codes::check(&ctx.state, Purpose::ChangeEmail, &id, data.trimmed("code")).await {
        Ok(c) => c,
        Err(e) => return ctx.fail(e),
    };
    if let Some(err) = code_error(&check) {
        return form(ctx.page(), StatusCode::UNAUTHORIZED, code_form("/settings/email/code", &email).error("code", err));
    }
    let now = clock::now_ms();
    // Told at the address it had until now.
    let changed = notice(&ctx.state, Template::EmailChanged, &account.email, serde_json::json!({}));
    match ctx.state.db.set_email(&account.id, &email, now, Some(&changed)).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            ctx.session.data.journey = None;
            let page = ctx.page();
            return ctx.finish(message(page, StatusCode::CONFLICT, "That email address is already used", &["Another Citizen ID account uses that email address, so we have not changed yours."], Some(("/settings", "Back to your account")))).await;
        }
        Err(e) => return ctx.fail(e),
    }
    audit(&ctx.state, "account.email_changed", Some(&account.id), &ctx.ip, serde_json::json!({})).await;
    ctx.session.data.journey = None;
    let account = ctx.state.db.account(&account.id).await.ok().flatten().unwrap_or(account);
    render_settings(ctx, &account, Some("Your email address has been changed.".into())).await
}

fn mobile_form(p9: bool) -> Form {
    let f = Form::new("Change your mobile phone number", "/settings/mobile", "Continue")
        .intro("We will send a code to the new number. It takes effect once you enter the code.")
        .field(Field::new("mobile", "New UK mobile phone number", "tel", "tel").hint("For example, 07700 900 982"))
        .back("/settings");
    if p9 { f.checkbox("Also update the mobile number on my NHS record") } else { f }
}

pub async fn get_mobile(ctx: Ctx) -> Response {
    let (ctx, account) = match signed_in_fresh(ctx, &MOBILE_PAGE).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let page = ctx.page();
    ctx.finish(form(page, StatusCode::OK, mobile_form(proofing_level(&account) == ProofingLevel::P9))).await
}

pub async fn post_mobile(ctx: Ctx, body: Bytes) -> Response {
    let data = match posted(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let (mut ctx, account) = match signed_in_fresh(ctx, &MOBILE).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let p9 = proofing_level(&account) == ProofingLevel::P9;
    let mobile = match MobileNumber::parse(data.trimmed("mobile")) {
        Ok(m) => m,
        Err(e) => return form(ctx.page(), StatusCode::BAD_REQUEST, mobile_form(p9).error("mobile", e.to_string())),
    };
    let id = random_token(16);
    match codes::send(&ctx.state, Purpose::ChangeMobile, &id, codes::Recipient::To(mobile.as_str()), &ctx.ip).await {
        Ok(SendOutcome::Sent) => {}
        Ok(SendOutcome::TooMany) => return form(ctx.page(), StatusCode::TOO_MANY_REQUESTS, mobile_form(p9).error("mobile", "Too many codes sent. Try again in an hour.")),
        Err(e) => return ctx.fail(e),
    }
    ctx.session.data.journey = Some(Journey::ChangeMobile { id, mobile: mobile.as_str().into(), update_pds: p9 && data.checked("remember") });
    let page = ctx.page();
    ctx.finish(form(page, StatusCode::OK, code_form("/settings/mobile/code", &mobile.masked()))).await
}

pub async fn post_mobile_code(ctx: Ctx, body: Bytes) -> Response {
    let data = match posted(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let (mut ctx, account) = match signed_in_fresh(ctx, &MOBILE_CODE).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(Journey::ChangeMobile { id, mobile, update_pds }) = ctx.session.data.journey.clone() else { return ctx.redirect("/settings").await };
    let check = match codes::check(&ctx.state, Purpose::ChangeMobile, &id, data.trimmed("code")).await {
        Ok(c) => c,
        Err(e) => return ctx.fail(e),
    };
    if let Some(err) = code_error(&check) {
        return form(ctx.page(), StatusCode::UNAUTHORIZED, code_form("/settings/mobile/code", "your new number").error("code", err));
    }
    ctx.session.data.journey = None;
    let now = clock::now_ms();
    // PDS first: if the NHS record cannot be updated, the login details stay as they were too.
    if update_pds {
        let Some(nhs) = account.nhs_number.as_deref().and_then(|n| domain::NhsNumber::parse(n).ok()) else {
            return ctx.redirect("/settings").await;
        };
        // The client reads the record's current version first: the one stored at proving
        // time is stale once anything on PDS changes.
        match ctx.state.pds.update_contact(&nhs, Some(&mobile), None).await {
            Ok(updated) => {
                if let Err(e) = ctx.state.db.set_pds_version(&account.id, &updated.version).await {
                    return ctx.fail(e);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "PDS contact update failed");
                let page = ctx.page();
                return ctx
                    .finish(message(
                        page,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Sorry, we could not update your NHS record",
                        &["Nothing has been changed: your NHS record and the number you sign in with are as they were. Try again later."],
                        Some(("/settings", "Back to your account")),
                    ))
                    .await;
            }
        }
    }
    // Told at the number it had until now.
    let changed = account.mobile.as_deref().map(|old| notice(&ctx.state, Template::MobileChanged, old, serde_json::json!({})));
    if let Err(e) = ctx.state.db.set_mobile(&account.id, &mobile, update_pds, now, changed.as_ref()).await {
        return ctx.fail(e);
    }
    audit(&ctx.state, "account.mobile_changed", Some(&account.id), &ctx.ip, serde_json::json!({ "pds_updated": update_pds })).await;
    let account = ctx.state.db.account(&account.id).await.ok().flatten().unwrap_or(account);
    render_settings(ctx, &account, Some("Your mobile phone number has been changed.".into())).await
}

fn landline_form() -> Form {
    Form::new("Your landline number", "/settings/landline", "Save")
        .intro("Services that ask for it can call you on this number. Leave it empty to remove it.")
        .field(Field::new("landline", "UK landline number", "tel", "tel").hint("For example, 0113 496 0000"))
        .back("/settings")
}

pub async fn get_landline(ctx: Ctx) -> Response {
    signed_in_form(ctx, &LANDLINE_PAGE, landline_form()).await
}

/// A landline cannot receive a text message, so it is stored as given and released with
/// `landline_number_verified: false` until a call-back check exists.
pub async fn post_landline(ctx: Ctx, body: Bytes) -> Response {
    let data = match posted(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let (ctx, account) = match signed_in_fresh(ctx, &LANDLINE).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let value = match data.trimmed("landline") {
        "" => None,
        v => match LandlineNumber::parse(v) {
            Ok(l) => Some(l.as_str().to_string()),
            Err(e) => return form(ctx.page(), StatusCode::BAD_REQUEST, landline_form().error("landline", e.to_string())),
        },
    };
    if let Err(e) = ctx.state.db.set_landline(&account.id, value.as_deref(), clock::now_ms()).await {
        return ctx.fail(e);
    }
    let account = ctx.state.db.account(&account.id).await.ok().flatten().unwrap_or(account);
    render_settings(ctx, &account, Some("Your landline number has been saved.".into())).await
}

fn password_form(has_password: bool) -> Form {
    let f = Form::new("Change your password", "/settings/password", "Save password").back("/settings");
    let f = if has_password { f.field(Field::new("current", "Current password", "password", "current-password")) } else { f };
    f.field(Field::new("password", "New password", "password", "new-password")).field(Field::new("confirm", "Confirm your new password", "password", "new-password"))
}

pub async fn get_password(ctx: Ctx) -> Response {
    let (ctx, account) = match signed_in_fresh(ctx, &PASSWORD_PAGE).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let page = ctx.page();
    ctx.finish(form(page, StatusCode::OK, password_form(account.password_hash.is_some()))).await
}

/// A new password signs out every other device (the session in use continues).
pub async fn post_password(ctx: Ctx, body: Bytes) -> Response {
    let data = match posted(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let (ctx, account) = match signed_in_fresh(ctx, &PASSWORD).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let has = account.password_hash.is_some();
    // The current password is still asked for, inside the fresh session: ASVS 5.0 6.2.3 wants
    // the current and the new password for a change. Rate limited and counted like sign-in.
    if has {
        let again = |ctx: &Ctx, status, message: &str| form(ctx.page(), status, password_form(has).error("current", message));
        match check_current_password(&ctx.state, &account, data.get("current"), &ctx.ip).await {
            Ok(CurrentPassword::Accepted) => {}
            Ok(CurrentPassword::Rejected) => return again(&ctx, StatusCode::UNAUTHORIZED, "Enter your current password correctly"),
            Ok(CurrentPassword::Locked) => return again(&ctx, StatusCode::FORBIDDEN, "Too many incorrect passwords. Try again in 15 minutes."),
            Ok(CurrentPassword::TooMany) => return again(&ctx, StatusCode::TOO_MANY_REQUESTS, "Too many attempts. Try again in 15 minutes."),
            Err(e) => return ctx.fail(e),
        }
    }
    let hash = match password::choose(data.get("password"), data.get("confirm"), &[&account.email]).await {
        Ok(h) => h,
        Err(password::NewPasswordError::Refused { field, message }) => {
            return form(ctx.page(), StatusCode::BAD_REQUEST, password_form(has).error(field, message));
        }
        Err(password::NewPasswordError::Internal(e)) => return ctx.fail(e),
    };
    let changed = notice(&ctx.state, Template::PasswordChanged, &account.email, serde_json::json!({}));
    if let Err(e) = ctx.state.db.set_password(&account.id, &hash, clock::now_ms(), Some(&changed)).await {
        return ctx.fail(e);
    }
    audit(&ctx.state, "account.password_changed", Some(&account.id), &ctx.ip, serde_json::json!({})).await;
    render_settings(ctx, &account, Some("Your password has been changed. Other devices have been signed out.".into())).await
}
