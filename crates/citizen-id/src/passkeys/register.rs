//! Adding a passkey to an account: start (the options for `navigator.credentials.create`)
//! and finish (verify the new credential and store it).

use webauthn_rs::prelude::{CredentialID, Passkey, RegisterPublicKeyCredential};

use super::ceremony::{self, CeremonyState};
use super::{PasskeyError, counters, credential_id, user_handle};
use crate::accounts::messages::{Template, notice};
use crate::clock;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::accounts::AccountRecord;
use crate::store::passkeys::PasskeyRecord;

/// The longest name a citizen can give a passkey.
pub const MAX_NAME: usize = 60;

/// How the new passkey is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enrolment {
    /// Added by a signed-in citizen, or the first passkey of a new passwordless account.
    Ordinary,
    /// Account recovery after email and SMS codes: also ends every session of the account.
    Recovery,
}

/// Starts a registration for `account`: returns the options to hand the browser and the
/// ceremony id for the session. Passkeys the account already has are excluded, so one
/// authenticator is not registered twice.
pub async fn start(state: &AppState, account: &AccountRecord) -> Result<(serde_json::Value, String), PasskeyError> {
    let existing: Vec<CredentialID> = state
        .db
        .passkeys_for_account(&account.id)
        .await?
        .iter()
        .filter_map(|p| serde_json::from_str::<Passkey>(&p.credential).ok())
        .map(|p| p.cred_id().clone())
        .collect();
    let (options, registration) =
        state.webauthn.start_passkey_registration(user_handle(&account.id), &account.email, &account.email, Some(existing))?;
    let id = ceremony::store(&state.db, Some(&account.id), &CeremonyState::Register(registration)).await?;
    let mut options = serde_json::to_value(&options).map_err(|e| PasskeyError::Rejected(e.to_string()))?;
    // Ask for a discoverable credential (a true passkey), so the citizen can later sign in
    // without typing their email. webauthn-rs leaves this a client-side preference and does
    // not enforce it at the finish, so authenticators that cannot store one still work.
    if let Some(selection) = options.pointer_mut("/publicKey/authenticatorSelection").and_then(|v| v.as_object_mut()) {
        selection.insert("residentKey".into(), "required".into());
        selection.insert("requireResidentKey".into(), true.into());
    }
    Ok((options, id))
}

/// A name as the citizen typed it, trimmed and bounded; "Passkey" when blank.
pub fn clean_name(name: &str) -> String {
    let name: String = name.trim().chars().filter(|c| !c.is_control()).take(MAX_NAME).collect();
    if name.is_empty() { "Passkey".to_string() } else { name }
}

/// Verifies the browser's answer to the ceremony `ceremony_id`, which must be a registration
/// for `account_id`, and stores the passkey, with a notice to `notify` (the owner's email) in
/// the same transaction when given.
pub async fn finish(
    state: &AppState,
    ceremony_id: &str,
    account_id: &str,
    name: &str,
    response: &RegisterPublicKeyCredential,
    enrolment: Enrolment,
    notify: Option<&str>,
) -> Result<PasskeyRecord, PasskeyError> {
    let taken = ceremony::take(&state.db, ceremony_id).await?;
    let CeremonyState::Register(registration) = taken.state else { return Err(PasskeyError::NoCeremony) };
    if taken.account_id.as_deref() != Some(account_id) {
        return Err(PasskeyError::NoCeremony);
    }
    let passkey = state.webauthn.finish_passkey_registration(response, &registration)?;
    let (sign_count, backup_eligible, backup_state) = counters(&passkey);
    let record = PasskeyRecord {
        id: credential_id(&passkey),
        account_id: account_id.to_string(),
        name: clean_name(name),
        credential: serde_json::to_string(&passkey).expect("passkey serialises"),
        created_at: clock::now_ms(),
        last_used_at: None,
        sign_count,
        backup_eligible,
        backup_state,
    };
    // The owner's notice, stored with the passkey.
    let added = notify.map(|to| notice(state, Template::PasskeyAdded, to, serde_json::json!({ "passkey_name": record.name })));
    let stored = match enrolment {
        Enrolment::Ordinary => state.db.insert_passkey(&record, added.as_ref()).await,
        Enrolment::Recovery => state.db.insert_recovery_passkey(&record, added.as_ref()).await,
    };
    match stored {
        Ok(()) => Ok(record),
        Err(StoreError::Conflict) => Err(PasskeyError::AlreadyRegistered),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_never_empty() {
        assert_eq!(clean_name("  My phone "), "My phone");
        assert_eq!(clean_name(""), "Passkey");
        assert_eq!(clean_name("a\u{0}b"), "ab");
        assert_eq!(clean_name(&"x".repeat(200)).len(), MAX_NAME);
    }
}
