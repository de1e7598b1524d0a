//! Password sign-in with lockout, and registration's final write.

use domain::{Email, MobileNumber};

use super::AccountError;
use crate::clock;
use crate::crypto::{password, random_token};
use crate::state::AppState;
use crate::store::accounts::{AccountRecord, NewAccount};
use crate::store::audit::AuditEvent;
use crate::store::StoreError;

#[derive(Debug)]
pub enum PasswordOutcome {
    Accepted(Box<AccountRecord>),
    /// Wrong email or password (the two are not told apart).
    Rejected,
    /// Too many wrong passwords: locked until the time given (unix ms).
    Locked,
}

/// Checks an email and password. Unknown emails cost the same Argon2 time as known ones.
pub async fn check_password(state: &AppState, email: &Email, entered: &str, ip: &str) -> Result<PasswordOutcome, AccountError> {
    let now = clock::now_ms();
    let account = state.db.account_by_email(email.as_str()).await?;
    let stored = account.as_ref().and_then(|a| a.password_hash.clone());
    let ok = password::verify(entered.to_string(), stored).await;
    let Some(account) = account else { return Ok(PasswordOutcome::Rejected) };
    if account.locked_until.is_some_and(|t| t > now) {
        return Ok(PasswordOutcome::Locked);
    }
    if ok {
        return Ok(PasswordOutcome::Accepted(Box::new(account)));
    }
    let limits = &state.settings.limits;
    let failures = state.db.record_failed_login(&account.id, limits.password_max_failures, now + limits.lockout, now).await?;
    audit(state, "signin.password_rejected", Some(&account.id), ip, serde_json::json!({ "failures": failures })).await;
    Ok(if failures >= limits.password_max_failures { PasswordOutcome::Locked } else { PasswordOutcome::Rejected })
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
