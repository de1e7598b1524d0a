//! Signing in with a passkey, two ways:
//! - usernameless: the authenticator chooses a discoverable credential (the "Sign in with a
//!   passkey" button, or the browser's autofill under conditional mediation) and names the
//!   account through its user handle;
//! - after the citizen typed their email: only that account's passkeys are asked for.
//!
//! Either way the finish looks the credential up in the database at that moment, so a passkey
//! removed after the start is refused, and a credential of another account is refused.
//! A lockout earned by wrong passwords or codes does not stop a passkey: it cannot be guessed,
//! and whoever caused the lockout should not lock the owner out.

use aws_lc_rs::hmac;
use domain::Email;
use serde_json::json;
use webauthn_rs::fake::{FakePasskeyDistribution, WebauthnFakeCredentialGenerator};
use webauthn_rs::prelude::{Passkey, PublicKeyCredential};

use super::ceremony::{self, CeremonyState};
use super::{PasskeyError, user_handle};
use crate::clock;
use crate::crypto::{b64url, random_token};
use crate::state::AppState;
use crate::store::passkeys::PasskeyUse;

/// Starts a sign-in: the options for `navigator.credentials.get` and the ceremony id.
///
/// With an email, the ceremony is bound to that account and lists its passkeys. The answer has
/// the same shape whether or not the email has an account with passkeys (no enumeration):
/// otherwise the list holds made-up credential ids, stable for that email (webauthn-rs's fake
/// credential generator, keyed from the server pepper), and the ceremony is bound to an
/// account no credential can belong to.
pub async fn start(state: &AppState, email: Option<&Email>) -> Result<(serde_json::Value, String), PasskeyError> {
    let Some(email) = email else {
        let (options, s) = state.webauthn.start_discoverable_authentication()?;
        let id = ceremony::store(&state.db, None, &CeremonyState::SignIn(s)).await?;
        return Ok((to_json(&options)?, id));
    };
    let account = state.db.account_by_email(email.as_str()).await?;
    let passkeys: Vec<Passkey> = match &account {
        Some(a) => state.db.passkeys_for_account(&a.id).await?.iter().filter_map(|p| serde_json::from_str(&p.credential).ok()).collect(),
        None => Vec::new(),
    };
    let (mut options, account_id, ceremony) = match account {
        Some(a) if !passkeys.is_empty() => {
            let (options, s) = state.webauthn.start_passkey_authentication(&passkeys)?;
            (to_json(&options)?, a.id, CeremonyState::SignInAccount(s))
        }
        account => {
            let (options, s) = state.webauthn.start_discoverable_authentication()?;
            let mut options = to_json(&options)?;
            let fakes: Vec<serde_json::Value> =
                fake_credential_ids(state, email)?.iter().map(|id| json!({ "type": "public-key", "id": b64url(id) })).collect();
            options["publicKey"]["allowCredentials"] = fakes.into();
            let bound = account.map(|a| a.id).unwrap_or_else(|| format!("unknown-{}", random_token(16)));
            (options, bound, CeremonyState::SignIn(s))
        }
    };
    // The same shape either way: no autofill mediation, no extensions, no transport hints.
    if let Some(o) = options.as_object_mut() {
        o.remove("mediation");
    }
    if let Some(pk) = options["publicKey"].as_object_mut() {
        pk.remove("extensions");
        for c in pk.get_mut("allowCredentials").and_then(|a| a.as_array_mut()).into_iter().flatten() {
            c.as_object_mut().map(|c| c.remove("transports"));
        }
    }
    let id = ceremony::store(&state.db, Some(&account_id), &ceremony).await?;
    Ok((options, id))
}

fn to_json(options: &impl serde::Serialize) -> Result<serde_json::Value, PasskeyError> {
    serde_json::to_value(options).map_err(|e| PasskeyError::Rejected(e.to_string()))
}

/// Plausible credential ids for an email without passkeys, the same on every request.
fn fake_credential_ids(state: &AppState, email: &Email) -> Result<Vec<Vec<u8>>, PasskeyError> {
    let key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, state.kek.pepper()), b"passkey fake credential ids");
    let generator = WebauthnFakeCredentialGenerator::<FakePasskeyDistribution>::new(key.as_ref())?;
    Ok(generator.generate(email.as_str().as_bytes())?)
}

/// Verifies the browser's assertion for the ceremony `ceremony_id` and records the use.
/// Returns the account signed in.
pub async fn finish(state: &AppState, ceremony_id: &str, response: &PublicKeyCredential) -> Result<String, PasskeyError> {
    let taken = ceremony::take(&state.db, ceremony_id).await?;
    let record = state.db.passkey(&b64url(&response.raw_id)).await?.ok_or(PasskeyError::UnknownCredential)?;
    if taken.account_id.as_ref().is_some_and(|a| *a != record.account_id) {
        return Err(PasskeyError::UnknownCredential);
    }
    // A passkey outliving its account (erased) names nobody.
    if state.db.account(&record.account_id).await?.is_none() {
        return Err(PasskeyError::UnknownCredential);
    }
    // The user handle, when the authenticator sends one, must name the passkey's owner.
    let expected_handle = user_handle(&record.account_id);
    if response.get_user_unique_id().is_some_and(|h| h != expected_handle.as_bytes()) {
        return Err(PasskeyError::UnknownCredential);
    }
    let mut passkey: Passkey = serde_json::from_str(&record.credential).map_err(|e| PasskeyError::Rejected(format!("stored passkey: {e}")))?;
    let result = match taken.state {
        CeremonyState::SignIn(s) => {
            let (handle, _) = state.webauthn.identify_discoverable_authentication(response)?;
            if handle != expected_handle {
                return Err(PasskeyError::UnknownCredential);
            }
            state.webauthn.finish_discoverable_authentication_v2(response, s, &passkey)?
        }
        CeremonyState::SignInAccount(s) => state.webauthn.finish_passkey_authentication(response, &s)?,
        CeremonyState::Register(_) => return Err(PasskeyError::NoCeremony),
    };
    // Belt and braces: the passkey APIs already require it.
    if !result.user_verified() {
        return Err(PasskeyError::Rejected("user verification missing".into()));
    }
    passkey.update_credential(&result);
    let used = PasskeyUse {
        credential: &serde_json::to_string(&passkey).expect("passkey serialises"),
        sign_count: i64::from(result.counter()),
        backup_eligible: result.backup_eligible(),
        backup_state: result.backup_state(),
        at: clock::now_ms(),
    };
    if !state.db.record_passkey_use(&record.id, &record.account_id, &used).await? {
        // Removed while the ceremony was in flight.
        return Err(PasskeyError::UnknownCredential);
    }
    Ok(record.account_id)
}
