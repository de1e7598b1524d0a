//! Proving identity (F6) inside sign-in (step-up) or from the start page: demographics first
//! (P5, or P9 through IDVM), then GP online credentials (POL, P9) or a code to the mobile on
//! PDS (AMNV). A citizen who stops is returned to the partner with `access_denied`.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use domain::{BirthDate, NhsNumber, Postcode, ProofingLevel};

use super::authorize::resume;
use crate::accounts::codes::{self, Purpose};
use crate::accounts::journey::Journey;
use crate::clock;
use crate::integrations::gp::GpCredentials;
use crate::oidc::claims::proofing_level;
use crate::proofing::matching::Demographics;
use crate::proofing::uplift::{self, AmnvStart, DemographicsOutcome, PolOutcome};
use crate::store::accounts::AccountRecord;
use crate::store::codes::CodeCheck;
use crate::web::ctx::Ctx;
use crate::web::forms::{self, FormData, check_csrf, csrf_failure};
use crate::web::pages::{Field, Form, form, message};

/// The level the pending partner request needs, or P9 when proving from the account pages.
fn needed(ctx: &Ctx) -> ProofingLevel {
    ctx.session.data.pending.as_ref().map(|p| p.vectors().lowest_level()).unwrap_or(ProofingLevel::P9)
}

async fn account(ctx: &Ctx) -> Result<AccountRecord, Response> {
    let Some(id) = ctx.session.account_id() else { return Err(Redirect::to("/signin").into_response()) };
    match ctx.state.db.account(id).await {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err(Redirect::to("/signin").into_response()),
        Err(e) => Err(ctx.fail(e)),
    }
}

async fn posted(ctx: &Ctx, body: &Bytes) -> Result<FormData, Response> {
    let data = forms::parse(&ctx.page(), body)?;
    if !check_csrf(&ctx.session, &data, &ctx.headers, &ctx.state.settings.issuer) {
        return Err(csrf_failure(ctx.page()));
    }
    Ok(data)
}

fn details_form() -> Form {
    Form::new("Enter your details", "/prove-identity/details", "Continue")
        .intro("We will check these against your NHS record to confirm who you are. Enter them as your GP surgery has them.")
        .field(Field::new("given_name", "First name", "text", "given-name"))
        .field(Field::new("family_name", "Last name", "text", "family-name"))
        .field(Field::new("dob_day", "Day of birth", "text", "bday-day").hint("For example, 27"))
        .field(Field::new("dob_month", "Month of birth", "text", "bday-month").hint("For example, 3"))
        .field(Field::new("dob_year", "Year of birth", "text", "bday-year").hint("For example, 1980"))
        .field(Field::new("postcode", "Postcode", "text", "postal-code"))
        .field(Field::new("nhs_number", "NHS number (optional)", "text", "off").hint("A 10 digit number, like 943 476 5919. You can find it on a letter from the NHS."))
        .link("/prove-identity/stop", "Go back to the service without proving who you are")
}

fn routes_page(ctx: &Ctx) -> Response {
    message(
        ctx.page(),
        StatusCode::OK,
        "Prove your identity to a high level",
        &[
            "We have matched your details with your NHS record. The service you are using needs a higher level of proof.",
            "If your GP surgery gave you details for their online services (a linkage key and account ID), you can use them now.",
        ],
        Some(("/prove-identity/gp", "Use your GP online services details")),
    )
}

/// Where to go once the account's level may have changed.
async fn after_uplift(ctx: Ctx, level: ProofingLevel) -> Response {
    if level >= needed(&ctx) {
        if ctx.session.data.pending.is_some() { resume(ctx).await } else { ctx.redirect("/").await }
    } else {
        let page = routes_page(&ctx);
        ctx.finish(page).await
    }
}

pub async fn get_start(ctx: Ctx) -> Response {
    let account = match account(&ctx).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let level = proofing_level(&account);
    if level >= needed(&ctx) && ctx.session.data.pending.is_some() {
        return resume(ctx).await;
    }
    if level >= ProofingLevel::P5 {
        let page = routes_page(&ctx);
        return ctx.finish(page).await;
    }
    let page = ctx.page();
    ctx.finish(form(page, StatusCode::OK, details_form())).await
}

/// The longest name PDS holds in one part (its `given` and `family` elements are 35
/// characters at most).
const NAME_MAX_CHARS: usize = 35;

/// A name is letters (any alphabet), spaces, hyphens and apostrophes, with at least one
/// letter: what names are made of, and nothing a FHIR search gives meaning to (`*`, `?`, `,`,
/// `$`, `|`, `\`, `:` and the rest, which PDS would read as wildcards, lists, modifiers or
/// escapes). Anything else is refused on the form and never sent (ASVS 5.0 V2.2.1: input is
/// checked against what is allowed; V1.2: nothing reaches another system's query language).
/// A typographic apostrophe is sent as a plain one.
fn check_name(name: &str, which: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("Enter your {which} name"));
    }
    if name.chars().count() > NAME_MAX_CHARS {
        return Err(format!("Your {which} name must be {NAME_MAX_CHARS} characters or fewer"));
    }
    let allowed = |c: char| c.is_alphabetic() || matches!(c, ' ' | '-' | '\'' | '\u{2019}');
    if !name.chars().all(allowed) || !name.chars().any(char::is_alphabetic) {
        return Err(format!("Your {which} name must only include letters, spaces, hyphens and apostrophes"));
    }
    Ok(())
}

/// The details form with what the citizen typed in it.
fn filled_form(data: &FormData) -> Form {
    let mut f = details_form();
    for field in f.fields.iter_mut() {
        field.value = data.trimmed(field.name).to_string();
    }
    f
}

/// "in 3 hours", "in 20 minutes": when a refused citizen may try again.
fn wait_text(ms: i64) -> String {
    let minutes = (ms.max(0) + 59_999) / 60_000;
    match minutes {
        0..=1 => "in a minute".into(),
        2..=90 => format!("in {minutes} minutes"),
        _ => format!("in {} hours", (minutes + 59) / 60),
    }
}

/// Parses the details form; the first error per field is shown.
#[expect(clippy::result_large_err, reason = "the error is the form to render again, once per request")]
fn parse_details(data: &FormData) -> Result<Demographics, Form> {
    let mut f = filled_form(data);
    let mut bad = false;
    let given = data.trimmed("given_name");
    if let Err(e) = check_name(given, "first") {
        f = f.error("given_name", e);
        bad = true;
    }
    let family = data.trimmed("family_name");
    if let Err(e) = check_name(family, "last") {
        f = f.error("family_name", e);
        bad = true;
    }
    let (y, m, d) = domain::civil_from_days(clock::now_secs().div_euclid(86_400));
    let dob = BirthDate::parse_parts(data.trimmed("dob_day"), data.trimmed("dob_month"), data.trimmed("dob_year"), (y, m, d));
    if let Err(e) = &dob {
        f = f.error("dob_day", e.to_string());
        bad = true;
    }
    let postcode = Postcode::parse(data.trimmed("postcode"));
    if let Err(e) = &postcode {
        f = f.error("postcode", e.to_string());
        bad = true;
    }
    let nhs = match data.trimmed("nhs_number") {
        "" => Ok(None),
        n => NhsNumber::parse(n).map(Some),
    };
    if let Err(e) = &nhs {
        f = f.error("nhs_number", e.to_string());
        bad = true;
    }
    if bad {
        return Err(f);
    }
    Ok(Demographics {
        given_name: given.replace('\u{2019}', "'"),
        family_name: family.replace('\u{2019}', "'"),
        birth_date: dob.expect("checked"),
        postcode: postcode.expect("checked"),
        nhs_number: nhs.expect("checked"),
    })
}

pub async fn post_details(ctx: Ctx, body: Bytes) -> Response {
    let data = match posted(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let account = match account(&ctx).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let typed = match parse_details(&data) {
        Ok(t) => t,
        Err(f) => return form(ctx.page(), StatusCode::BAD_REQUEST, f),
    };
    match uplift::prove_with_demographics(&ctx.state, &account, &typed, &ctx.ip).await {
        Err(e) => ctx.fail(e),
        Ok(DemographicsOutcome::Matched { level }) => after_uplift(ctx, level).await,
        // One answer for every kind of no-match (a wrong name, date, postcode or NHS number,
        // nobody, or several people): which detail was wrong is never said.
        Ok(DemographicsOutcome::NoMatch { remaining }) => form(
            ctx.page(),
            StatusCode::OK,
            filled_form(&data).error(
                "given_name",
                format!(
                    "We could not match these details with an NHS record. Check they are the same as your GP surgery has, or add your NHS number. {}",
                    match remaining {
                        0 => "That was your last try for today.".to_string(),
                        1 => "You can try 1 more time today.".to_string(),
                        n => format!("You can try {n} more times today."),
                    }
                ),
            ),
        ),
        Ok(DemographicsOutcome::TooManyAttempts { retry_in }) => {
            let again = format!("You can try again {}.", wait_text(retry_in));
            message(
                ctx.page(),
                StatusCode::TOO_MANY_REQUESTS,
                "You have tried to match your details too many times",
                &[
                    "To keep NHS records safe, we only allow a few tries a day.",
                    &again,
                    "Before you try again, check the details your GP surgery has for you: your name, date of birth and postcode as they are on your NHS record. Adding your NHS number helps. You can find it on a letter from the NHS or in the NHS App, or ask your GP surgery.",
                    "You can still use services that do not need you to prove who you are.",
                ],
                Some(("/prove-identity/stop", "Go back to the service")),
            )
        }
        Ok(DemographicsOutcome::Duplicate) => message(
            ctx.page(),
            StatusCode::CONFLICT,
            "You already have an account",
            &[
                "These details belong to another Citizen ID account. You can only have one account, so we have stopped this attempt and not linked the NHS record to this account.",
                "We have sent an email to the address on that account with a reminder of how to sign in, and told this account's email address that the attempt was stopped.",
            ],
            Some(("/signin", "Sign in to your existing account")),
        ),
        Ok(DemographicsOutcome::PdsUnavailable) => ctx.dependency_down(
            "Sorry, we cannot check your details right now",
            "The NHS records service is not responding. Nothing has been saved. Try again in a few minutes.",
            ("/prove-identity", "Try again"),
        ),
    }
}

fn gp_form() -> Form {
    Form::new("Enter your GP online services details", "/prove-identity/gp", "Continue")
        .intro("You will find these on the letter or email your GP surgery gave you when you registered for their online services.")
        .field(Field::new("ods_code", "Practice ID (ODS code)", "text", "off").hint("For example, A12345"))
        .field(Field::new("account_id", "Account ID", "text", "off"))
        .field(Field::new("linkage_key", "Linkage key", "text", "off"))
        .link("/prove-identity/stop", "Go back to the service without proving who you are")
}

pub async fn get_gp(ctx: Ctx) -> Response {
    let page = ctx.page();
    ctx.finish(form(page, StatusCode::OK, gp_form())).await
}

pub async fn post_gp(ctx: Ctx, body: Bytes) -> Response {
    let data = match posted(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let account = match account(&ctx).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if account.nhs_number.is_none() {
        return ctx.redirect("/prove-identity").await;
    }
    let creds = match GpCredentials::parse(data.trimmed("ods_code"), data.trimmed("account_id"), data.trimmed("linkage_key")) {
        Ok(c) => c,
        Err(e) => return form(ctx.page(), StatusCode::BAD_REQUEST, gp_form().error("linkage_key", e.to_string())),
    };
    match uplift::prove_with_gp_credentials(&ctx.state, &account, &creds, &ctx.ip).await {
        Err(e) => ctx.fail(e),
        Ok(PolOutcome::Proven) => after_uplift(ctx, ProofingLevel::P9).await,
        Ok(PolOutcome::Wrong { remaining }) => form(
            ctx.page(),
            StatusCode::UNAUTHORIZED,
            gp_form().error("linkage_key", format!("These details do not match your GP record. Check them and try again. You have {remaining} more tries today.")),
        ),
        Ok(PolOutcome::Locked) => message(
            ctx.page(),
            StatusCode::FORBIDDEN,
            "Too many attempts",
            &["You have entered GP online services details that did not match too many times. Try again tomorrow, or ask your GP surgery for new details."],
            None,
        ),
        Ok(PolOutcome::GpUnavailable) => ctx.dependency_down(
            "Sorry, we cannot check your details right now",
            "Your GP surgery's system is not responding. Nothing has been saved. Try again later.",
            ("/prove-identity/gp", "Try again"),
        ),
    }
}

fn amnv_form(last: &str) -> Form {
    let sent = if last.is_empty() { "We have sent a code to the mobile number that your GP surgery has for you.".to_string() } else { format!("We have sent a code to the mobile number ending {last} that your GP surgery has for you.") };
    Form::new("Enter the security code", "/prove-identity/mobile", "Continue")
        .intro(sent)
        .intro("Once you enter it, this becomes the mobile number for your Citizen ID account.")
        .field(Field::new("code", "Security code", "text", "one-time-code").hint("For example, 123456"))
}

/// AMNV, first page: what will happen, and a button. Only the button's POST sends the code, so
/// no link from another site can make Citizen ID text anyone.
pub async fn get_mobile(ctx: Ctx) -> Response {
    if let Err(r) = account(&ctx).await {
        return r;
    }
    let page = ctx.page();
    let f = Form::new("Confirm your mobile phone number", "/prove-identity/mobile/send", "Send a security code")
        .intro("We will send a security code to the mobile phone number that your GP surgery has for you.")
        .intro("Once you enter it, this becomes the mobile number for your Citizen ID account.")
        .back("/prove-identity");
    ctx.finish(form(page, StatusCode::OK, f)).await
}

/// AMNV: a code to the mobile on the PDS record.
pub async fn post_mobile_send(mut ctx: Ctx, body: Bytes) -> Response {
    if let Err(r) = posted(&ctx, &body).await {
        return r;
    }
    let account = match account(&ctx).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match uplift::start_amnv(&ctx.state, &account, &ctx.ip).await {
        Err(e) => ctx.fail(e),
        Ok(AmnvStart::Sent { mobile, last_digits }) => {
            // The number the code went to: the one a right code proves, and the only one
            // `phone_number_pds_matched` may then describe.
            ctx.session.data.journey = Some(Journey::Amnv { mobile });
            let page = ctx.page();
            ctx.finish(form(page, StatusCode::OK, amnv_form(&last_digits))).await
        }
        Ok(AmnvStart::NoMobileOnPds) => message(ctx.page(), StatusCode::OK, "We cannot send you a code", &["Your GP surgery does not have a mobile number for you."], Some(("/prove-identity", "Continue"))),
        Ok(AmnvStart::TooMany) => message(ctx.page(), StatusCode::TOO_MANY_REQUESTS, "Too many codes sent", &["Wait an hour, then try again."], None),
        Ok(AmnvStart::PdsUnavailable) => ctx.dependency_down(
            "Sorry, we cannot check your details right now",
            "The NHS records service is not responding. Nothing has been sent. Try again in a few minutes.",
            ("/prove-identity/mobile", "Try again"),
        ),
    }
}

pub async fn post_mobile(mut ctx: Ctx, body: Bytes) -> Response {
    let data = match posted(&ctx, &body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let account = match account(&ctx).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(Journey::Amnv { mobile }) = ctx.session.data.journey.clone() else { return ctx.redirect("/prove-identity/mobile").await };
    match codes::check(&ctx.state, Purpose::Amnv, &account.id, data.trimmed("code")).await {
        Err(e) => ctx.fail(e),
        Ok(CodeCheck::Accepted) => {
            ctx.session.data.journey = None;
            if let Err(e) = uplift::finish_amnv(&ctx.state, &account, &mobile, &ctx.ip).await {
                return ctx.fail(e);
            }
            let level = proofing_level(&account);
            after_uplift(ctx, level).await
        }
        Ok(CodeCheck::Wrong { remaining }) => {
            form(ctx.page(), StatusCode::UNAUTHORIZED, amnv_form("").error("code", format!("The security code is not correct. {}", CodeCheck::tries_left(remaining))))
        }
        Ok(CodeCheck::Malformed) => form(ctx.page(), StatusCode::BAD_REQUEST, amnv_form("").error("code", "Enter the 6-digit security code")),
        Ok(_) => form(ctx.page(), StatusCode::UNAUTHORIZED, amnv_form("").error("code", "The security code has expired. Go back and send a new code.")),
    }
}

/// The citizen stops: the partner hears `access_denied`.
pub async fn get_stop(mut ctx: Ctx) -> Response {
    let Some(request) = ctx.session.data.pending.take() else { return ctx.redirect("/").await };
    let location = crate::oidc::issue::denied(&request, "The user did not prove their identity to the level requested");
    ctx.finish(Redirect::to(&location).into_response()).await
}
