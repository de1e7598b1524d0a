//! One-time codes: six digits, stored as an HMAC, single use, ten minutes, five tries, and a
//! cap on how many are sent per hour. The message carrying a code is queued in the same
//! transaction that stores it.

use crate::clock::{self, HOUR};
use crate::crypto::{constant_time_eq, hmac_hex, random_digits, random_token};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::codes::CodeCheck;

use super::messages::{Template, code_message};

#[derive(Debug, PartialEq, Eq)]
pub enum SendOutcome {
    Sent,
    /// The hourly cap is reached; nothing was sent.
    TooMany,
}

/// What a code is for; codes of one purpose never work for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    VerifyMobile,
    SignIn,
    ResetEmail,
    ResetMobile,
    /// AMNV: a code to the mobile on the PDS record.
    Amnv,
    /// A new email given in Settings.
    ChangeEmail,
    /// A new mobile given in Settings.
    ChangeMobile,
    /// "Confirm it's you" before a sensitive change, after the password (`accounts::reauth`).
    Reauth,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify-email",
            Purpose::VerifyMobile => "verify-mobile",
            Purpose::SignIn => "sign-in",
            Purpose::ResetEmail => "reset-email",
            Purpose::ResetMobile => "reset-mobile",
            Purpose::Amnv => "amnv",
            Purpose::ChangeEmail => "change-email",
            Purpose::ChangeMobile => "change-mobile",
            Purpose::Reauth => "reauth",
        }
    }

    fn template(self) -> Template {
        match self {
            Purpose::VerifyEmail => Template::EmailVerificationCode,
            Purpose::VerifyMobile => Template::MobileVerificationCode,
            Purpose::SignIn | Purpose::ResetMobile | Purpose::Amnv | Purpose::Reauth => Template::SignInCode,
            Purpose::ChangeEmail => Template::EmailVerificationCode,
            Purpose::ChangeMobile => Template::MobileVerificationCode,
            Purpose::ResetEmail => Template::PasswordResetCode,
        }
    }
}

/// Where a code goes.
#[derive(Debug, Clone, Copy)]
pub enum Recipient<'a> {
    /// Send it to this email address or mobile number.
    To(&'a str),
    /// Send nothing, but count it as sent to this address: a journey for an email with no
    /// account (or one whose owner is told something else) looks and counts exactly like one
    /// for an email with an account.
    Withheld(&'a str),
    /// No address is known (an account without a mobile): stored, sent nowhere.
    Nowhere,
}

impl<'a> Recipient<'a> {
    fn address(self) -> Option<&'a str> {
        match self {
            Recipient::To(a) | Recipient::Withheld(a) => Some(a),
            Recipient::Nowhere => None,
        }
    }
}

/// Creates a code for `subject` and queues it to the recipient, if the caps allow: at most
/// `codes_per_hour` for one journey's purpose, and the message caps per recipient and per IP
/// (`limits::message`) that hold across every journey, so nobody can flood a citizen's phone
/// or inbox by starting journeys anew.
pub async fn send(state: &AppState, purpose: Purpose, subject: &str, to: Recipient<'_>, ip: &str) -> Result<SendOutcome, StoreError> {
    let now = clock::now_ms();
    let limits = &state.settings.limits;
    if state.db.codes_sent_since(subject, purpose.as_str(), now - HOUR).await? >= limits.codes_per_hour {
        return Ok(SendOutcome::TooMany);
    }
    if super::limits::message(state, to.address(), ip).await? == super::limits::Limit::Exceeded {
        return Ok(SendOutcome::TooMany);
    }
    let code = random_digits(6);
    let hash = hmac_hex(state.kek.pepper(), &code);
    let message = match to {
        Recipient::To(to) => Some(code_message(&state.kek, purpose.template(), to, &code)),
        Recipient::Withheld(_) | Recipient::Nowhere => None,
    };
    state
        .db
        .insert_code(&random_token(16), purpose.as_str(), subject, &hash, now, now + limits.code_lifetime, message.as_ref())
        .await?;
    metrics::counter!("citizen_id_codes_sent_total", "purpose" => purpose.as_str()).increment(1);
    Ok(SendOutcome::Sent)
}

/// Checks an entered code. In the sandpit the fixed test code stands in for the real one.
/// Anything but six digits is `Malformed` and spends no try (an empty box is a slip, not a
/// guess).
pub async fn check(state: &AppState, purpose: Purpose, subject: &str, entered: &str) -> Result<CodeCheck, StoreError> {
    let entered = entered.trim().replace(' ', "");
    if entered.len() != 6 || !entered.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(CodeCheck::Malformed);
    }
    let entered_hash = hmac_hex(state.kek.pepper(), &entered);
    let test_code = state.settings.test_code.clone();
    let limits = &state.settings.limits;
    state
        .db
        .check_code(
            purpose.as_str(),
            subject,
            |stored| constant_time_eq(stored, &entered_hash) || test_code.as_deref().is_some_and(|t| constant_time_eq(t, &entered)),
            limits.code_max_attempts,
            clock::now_ms(),
        )
        .await
}
