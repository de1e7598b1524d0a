//! Password sign-in with its throttles (`throttle`), and registration's final write.

use domain::{Email, MobileNumber};

use super::AccountError;
use crate::clock;
use super::limits;
use super::messages::{Template, compose};
use super::throttle::{Counters, Gate};
use crate::clock::HOUR;
use crate::crypto::{constant_time_eq, hmac_hex, password, random_token};
use crate::state::AppState;
use crate::store::accounts::{AccountRecord, NewAccount};
use crate::store::audit::AuditEvent;
use crate::store::StoreError;

#[derive(Debug)]
pub enum PasswordOutcome {
    Accepted(Box<AccountRecord>),
    /// Wrong email or password (the two are not told apart).
    Rejected,
    /// Too many wrong passwords from this IP for this email: wait this many ms (the password
    /// was not checked). The same for an email with no account.
    Wait(i64),
    /// The email's ceiling of wrong passwords is reached: only the emailed link goes on (the
    /// password was not checked). The same for an email with no account.
    CheckEmail,
    /// The right password, but wrong SMS codes have locked the account for a while. Only
    /// someone who knows the password can see this.
    Locked,
}

/// Checks an email and password under the rules of [`throttle`]. Unknown emails cost the same
/// Argon2 time, and get the same answers, as known ones.
pub async fn check_password(state: &AppState, email: &Email, entered: &str, ip: &str) -> Result<PasswordOutcome, AccountError> {
    let counters = Counters::new(state, email.as_str(), ip);
    match counters.gate(state).await? {
        Gate::Open => {}
        Gate::Wait(ms) => return Ok(PasswordOutcome::Wait(ms)),
        Gate::Ceiling => {
            send_unlock_link(state, email, counters.email_key(), ip).await?;
            return Ok(PasswordOutcome::CheckEmail);
        }
    }
    let account = state.db.account_by_email(email.as_str()).await?;
    let stored = account.as_ref().and_then(|a| a.password_hash.clone());
    let ok = password::verify(entered.to_string(), stored).await;
    let account = match account {
        Some(account) if ok => account,
        account => {
            let failures = counters.failed(state).await?;
            if let Some(account) = account {
                audit(state, "signin.password_rejected", Some(&account.id), ip, serde_json::json!({ "failures": failures })).await;
            }
            return Ok(PasswordOutcome::Rejected);
        }
    };
    counters.succeeded(state).await?;
    if account.locked_until.is_some_and(|t| t > clock::now_ms()) {
        return Ok(PasswordOutcome::Locked);
    }
    Ok(PasswordOutcome::Accepted(Box::new(account)))
}

/// Rule 3 of [`throttle`]: a link that clears the email's count, to the owner if there is one,
/// at most one an hour and within the message caps. For an email with no account the same is
/// stored and counted, and nothing is sent.
async fn send_unlock_link(state: &AppState, email: &Email, key: &str, ip: &str) -> Result<(), AccountError> {
    let now = clock::now_ms();
    if state.db.codes_sent_since(key, UNLOCK_PURPOSE, now - HOUR).await? > 0 {
        return Ok(());
    }
    if limits::message(state, Some(email.as_str()), ip).await? == limits::Limit::Exceeded {
        return Ok(());
    }
    let token = random_token(32);
    let link = state.settings.endpoint(&format!("/signin/unlock?r={key}&t={token}"));
    let message = state
        .db
        .account_by_email(email.as_str())
        .await?
        .map(|_| compose(&state.kek, Template::SignInUnlock, email.as_str(), serde_json::json!({ "link": link })));
    let hash = hmac_hex(state.kek.pepper(), &token);
    state.db.insert_code(&random_token(16), UNLOCK_PURPOSE, key, &hash, now, now + HOUR, message.as_ref()).await?;
    Ok(())
}

const UNLOCK_PURPOSE: &str = "unlock";

/// The emailed link of rule 3, opened: `true` when it was good, and the email's count of
/// wrong passwords is then cleared. Single use; five tries.
pub async fn unlock(state: &AppState, key: &str, token: &str) -> Result<bool, AccountError> {
    let hash = hmac_hex(state.kek.pepper(), token);
    let check = state.db.check_code(UNLOCK_PURPOSE, key, |stored| constant_time_eq(stored, &hash), 5, clock::now_ms()).await?;
    if check != crate::store::codes::CodeCheck::Accepted {
        return Ok(false);
    }
    state.db.clear_password_failures(&[key]).await?;
    Ok(true)
}

/// Writes a new account whole, once both email and mobile are verified.
pub async fn create_account(
    state: &AppState,
    email: &Email,
    password_hash: Option<String>,
    mobile: &MobileNumber,
    ip: &str,
) -> Result<Option<String>, AccountError> {
    let id = random_token(24);
    let new = NewAccount {
        id: id.clone(),
        email: email.as_str().to_string(),
        password_hash,
        mobile: mobile.as_str().to_string(),
        created_at: clock::now_ms(),
    };
    match state.db.insert_account(&new).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    metrics::counter!("citizen_id_accounts_created_total").increment(1);
    audit(state, "account.created", Some(&id), ip, serde_json::json!({ "level": "P0" })).await;
    Ok(Some(id))
}

/// Records a security event; a failure to audit is logged, not shown to the citizen.
pub async fn audit(state: &AppState, event: &str, account_id: Option<&str>, ip: &str, detail: serde_json::Value) {
    let ip_ref = Some(crate::crypto::hmac_hex(state.kek.pepper(), ip));
    let e = AuditEvent { event, account_id, client_id: None, ip: Some(ip), ip_ref, detail };
    if let Err(err) = state.db.audit(e, clock::now_ms()).await {
        tracing::warn!(event, error = %err, "audit write failed");
    }
}
