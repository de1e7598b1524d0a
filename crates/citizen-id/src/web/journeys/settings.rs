//! Settings (F8): the account page, connected services, signing out everywhere, the data
//! download, and deleting the account. Contact changes are in `settings_contact.rs`.
//! A partner can link straight here; a citizen who is not signed in signs in and comes back.

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::{MobileNumber, ProofingLevel, ScopeSet};

use super::reauth::{self, DELETE, DELETE_PAGE, DOWNLOAD, Sensitive};
use crate::accounts::messages::{Template, compose};
use crate::accounts::reauth::{CurrentPassword, check_current_password};
use crate::accounts::signin::audit;
use crate::clock;
use crate::oidc::claims::proofing_level;
use crate::store::accounts::AccountRecord;
use crate::web::ctx::Ctx;
use crate::web::forms::{self, FormData, check_csrf, csrf_failure};
use crate::web::pages::{Field, Form, ServiceView, ServicesPage, SettingsPage, form, long_date, message, render};

/// The signed-in account, or a redirect to sign in that comes back to `here`.
pub async fn signed_in(ctx: Ctx, here: &str) -> Result<(Ctx, AccountRecord), Response> {
    signed_in_returning(ctx, Some(here)).await
}

/// [`signed_in`], coming back to `return_to` (or home) after the sign-in.
pub async fn signed_in_returning(mut ctx: Ctx, return_to: Option<&str>) -> Result<(Ctx, AccountRecord), Response> {
    let Some(id) = ctx.session.account_id().map(String::from) else {
        ctx.session.data.return_to = return_to.map(String::from);
        return Err(ctx.redirect("/signin").await);
    };
    match ctx.state.db.account(&id).await {
        Ok(Some(a)) => Ok((ctx, a)),
        Ok(None) => {
            ctx.session.clear();
            Err(ctx.redirect("/signin").await)
        }
        Err(e) => Err(ctx.fail(e)),
    }
}

/// The signed-in account, for a sensitive route: also needs a fresh credential in this
/// browser, or the citizen confirms it is them first (`reauth.rs`).
pub async fn signed_in_fresh(ctx: Ctx, route: &Sensitive) -> Result<(Ctx, AccountRecord), Response> {
    let (ctx, account) = signed_in(ctx, route.back_to).await?;
    Ok((reauth::require_fresh(ctx, route).await?, account))
}

/// A sensitive settings form page, for a signed-in citizen with a fresh credential only.
pub async fn signed_in_form(ctx: Ctx, route: &Sensitive, f: Form) -> Response {
    match signed_in_fresh(ctx, route).await {
        Ok((ctx, _)) => {
            let page = ctx.page();
            ctx.finish(form(page, StatusCode::OK, f)).await
        }
        Err(r) => r,
    }
}

pub async fn posted(ctx: &Ctx, body: &Bytes) -> Result<FormData, Response> {
    let data = forms::parse(&ctx.page(), body)?;
    if !check_csrf(&ctx.session, &data, &ctx.headers, &ctx.state.settings.issuer) {
        return Err(csrf_failure(ctx.page()));
    }
    Ok(data)
}

fn level_text(level: ProofingLevel) -> (&'static str, Option<(String, String)>) {
    match level {
        ProofingLevel::P0 => (
            "You have not proved who you are yet. You can use services that only need to know it is the same person each time.",
            Some(("/prove-identity".into(), "Prove who you are to use more services".into())),
        ),
        ProofingLevel::P5 => (
            "Your details match your NHS record (medium level). Some services need a higher level.",
            Some(("/prove-identity".into(), "Prove who you are to a high level".into())),
        ),
        ProofingLevel::P9 => ("You have proved who you are to a high level. You can use every service.", None),
    }
}

pub async fn render_settings(ctx: Ctx, account: &AccountRecord, notice: Option<String>) -> Response {
    let level = proofing_level(account);
    let (text, raise) = level_text(level);
    let mut rows = Vec::new();
    if level >= ProofingLevel::P5 {
        let name = [account.given_name.clone(), account.middle_names.clone(), account.family_name.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        rows.push(("Name".to_string(), name, String::new()));
        rows.push(("Date of birth".to_string(), account.birthdate.clone().unwrap_or_default(), String::new()));
    }
    rows.push(("Email address".to_string(), account.email.clone(), "/settings/email".into()));
    let mobile = account.mobile.as_deref().and_then(|m| MobileNumber::parse(m).ok()).map(|m| m.national()).unwrap_or_default();
    rows.push(("Mobile phone number".to_string(), mobile, "/settings/mobile".into()));
    rows.push(("Landline number".to_string(), account.landline.clone().unwrap_or_else(|| "Not given".into()), "/settings/landline".into()));
    let password = if account.password_hash.is_some() { "Set" } else { "None (you sign in with a passkey)" };
    rows.push(("Password".to_string(), password.to_string(), "/settings/password".into()));
    // Contact details from PDS are shown only at P9 (the seeds' settings rules).
    let mut pds_rows = Vec::new();
    if level == ProofingLevel::P9
        && let Some(nhs) = account.nhs_number.as_deref().and_then(|n| domain::NhsNumber::parse(n).ok())
    {
        match ctx.state.pds.get_patient(&nhs).await {
            Ok(p) => {
                pds_rows.push(("Mobile phone number".to_string(), p.mobile.clone().unwrap_or_else(|| "None".into())));
                pds_rows.push(("Email address".to_string(), p.email.clone().unwrap_or_else(|| "None".into())));
            }
            Err(_) => pds_rows.push(("Contact details".to_string(), "We cannot show these right now. Try again later.".into())),
        }
    }
    let page = ctx.page();
    ctx.finish(render(StatusCode::OK, &SettingsPage { page, notice, level_text: text.into(), raise, rows, pds_rows })).await
}

pub async fn get_settings(ctx: Ctx) -> Response {
    match signed_in(ctx, "/settings").await {
        Ok((ctx, account)) => render_settings(ctx, &account, None).await,
        Err(r) => r,
    }
}

pub async fn get_services(ctx: Ctx) -> Response {
    let (ctx, account) = match signed_in(ctx, "/settings/services").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let services = match ctx.state.db.connected_services(&account.id).await {
        Ok(s) => s,
        Err(e) => return ctx.fail(e),
    };
    let services = services
        .into_iter()
        .map(|s| ServiceView {
            details: s
                .scope
                .as_deref()
                .and_then(|sc| ScopeSet::parse(sc).ok())
                .map(|set| set.iter().filter(|x| *x != domain::Scope::Openid).map(|x| x.description().to_string()).collect::<Vec<_>>())
                .map(|d| if d.is_empty() { vec!["That you have a Citizen ID account".to_string()] } else { d })
                .unwrap_or_default(),
            name: s.name,
            client_id: s.client_id,
            last_used: long_date(s.last_used),
        })
        .collect();
    let page = ctx.page();
    ctx.finish(render(StatusCode::OK, &ServicesPage { page, services })).await
}

pub async fn post_withdraw(ctx: Ctx, body: Bytes) -> Response {
    let data = match posted(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let (ctx, account) = match signed_in(ctx, "/settings/services").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let client_id = data.trimmed("client_id").to_string();
    if let Err(e) = ctx.state.db.withdraw_consent(&account.id, &client_id, clock::now_ms()).await {
        return ctx.fail(e);
    }
    audit(&ctx.state, "consent.withdrawn", Some(&account.id), &ctx.ip, serde_json::json!({ "client_id": client_id })).await;
    render_settings(ctx, &account, Some("You have stopped sharing your details with that service. It will ask you again next time you use it.".into())).await
}

pub async fn post_sign_out_everywhere(mut ctx: Ctx, body: Bytes) -> Response {
    if let Err(r) = posted(&ctx, &body).await {
        return r;
    }
    let Some(id) = ctx.session.account_id().map(String::from) else { return ctx.redirect("/signin").await };
    if let Err(e) = ctx.state.db.sign_out_everywhere(&id).await {
        return ctx.fail(e);
    }
    audit(&ctx.state, "signout.everywhere", Some(&id), &ctx.ip, serde_json::json!({})).await;
    ctx.session.clear();
    let page = ctx.page();
    ctx.finish(message(page, StatusCode::OK, "You have signed out on every device", &["Every device and browser signed in to your account has been signed out."], Some(("/signin", "Sign in again")))).await
}

/// Subject access: everything held about the citizen, as a JSON download.
pub async fn get_download(ctx: Ctx) -> Response {
    let (ctx, account) = match signed_in_fresh(ctx, &DOWNLOAD).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let data = match ctx.state.db.export_account(&account.id).await {
        Ok(d) => d,
        Err(e) => return ctx.fail(e),
    };
    audit(&ctx.state, "account.exported", Some(&account.id), &ctx.ip, serde_json::json!({})).await;
    let body = serde_json::to_string_pretty(&data).unwrap_or_default();
    let response = (
        [(header::CONTENT_TYPE, "application/json"), (header::CONTENT_DISPOSITION, "attachment; filename=\"citizen-id-data.json\"")],
        body,
    )
        .into_response();
    ctx.finish(response).await
}

fn delete_form(has_password: bool) -> Form {
    let f = Form::new("Delete your account", "/settings/delete", "Delete my account")
        .intro("This deletes your Citizen ID account and the details we hold about you. Services you have used keep what they already received.")
        .back("/settings");
    if has_password {
        f.intro("You will not be able to undo this. To confirm, enter your password.")
            .field(Field::new("password", "Password", "password", "current-password"))
    } else {
        f.intro("You will not be able to undo this.")
    }
}

pub async fn get_delete(ctx: Ctx) -> Response {
    let (ctx, account) = match signed_in_fresh(ctx, &DELETE_PAGE).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let page = ctx.page();
    ctx.finish(form(page, StatusCode::OK, delete_form(account.password_hash.is_some()))).await
}

/// Deletion needs a fresh credential (`reauth.rs`, which replaced the five-minute sign-in rule
/// passwordless accounts had) and, for an account with a password, that password once more:
/// it cannot be undone, so the citizen confirms it on the page itself. The password check is
/// rate limited and counted like sign-in (`accounts::reauth::check_current_password`).
pub async fn post_delete(ctx: Ctx, body: Bytes) -> Response {
    let data = match posted(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let (mut ctx, account) = match signed_in_fresh(ctx, &DELETE).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if account.password_hash.is_some() {
        let again = |ctx: &Ctx, status, message: &str| form(ctx.page(), status, delete_form(true).error("password", message));
        match check_current_password(&ctx.state, &account, data.get("password"), &ctx.ip).await {
            Ok(CurrentPassword::Accepted) => {}
            Ok(CurrentPassword::Rejected) => return again(&ctx, StatusCode::UNAUTHORIZED, "Enter your correct password"),
            Ok(CurrentPassword::Locked) => return again(&ctx, StatusCode::FORBIDDEN, "Too many incorrect passwords. Try again in 15 minutes."),
            Ok(CurrentPassword::TooMany) => return again(&ctx, StatusCode::TOO_MANY_REQUESTS, "Too many attempts. Try again in 15 minutes."),
            Err(e) => return ctx.fail(e),
        }
    }
    let now = clock::now_ms();
    let confirmation = compose(&ctx.state.kek, Template::AccountDeleted, &account.email, serde_json::json!({}));
    if let Err(e) = ctx.state.db.delete_account(&account.id, &confirmation, now).await {
        return ctx.fail(e);
    }
    // The one record the law needs: that this (pseudonymous) account was deleted, and when.
    let e = crate::store::audit::AuditEvent { event: "account.deleted", account_id: Some(&account.id), client_id: None, ip: None, ip_ref: None, detail: serde_json::json!({}) };
    if let Err(err) = ctx.state.db.audit(e, now).await {
        tracing::warn!(error = %err, "audit write failed");
    }
    metrics::counter!("citizen_id_accounts_deleted_total").increment(1);
    ctx.session.clear();
    let page = ctx.page();
    ctx.finish(message(page, StatusCode::OK, "Your account has been deleted", &["We have deleted your Citizen ID account and sent a confirmation to your email address."], None)).await
}
