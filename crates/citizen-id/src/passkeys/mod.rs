//! Passkeys (SPEC F9): FIDO2/WebAuthn credentials, the `Cm` component of the vectors of trust.
//!
//! The cryptography is webauthn-rs's; this module adds the rules of the service:
//! - the relying party is the issuer: RP id = the issuer's host, origin = the issuer URL, so a
//!   passkey made for one deployment never works for another (or for a phishing copy);
//! - user verification is REQUIRED (the passkey APIs of webauthn-rs insist on it): a passkey
//!   is something the citizen has *and* is or knows, which is why it stands alone as `Cm`;
//! - attestation is not asked for: any authenticator that verifies its user will do;
//! - ceremony state stays on the server ([`ceremony`]), single use, for five minutes;
//! - every use checks the passkey is still registered *now* and stores the signature counter
//!   and backup flags the authenticator reported (`Passkey::update_credential`).
//!
//! No HTTP here: `web::journeys::passkeys` turns these results into JSON and pages.

pub mod authenticate;
pub mod ceremony;
pub mod register;

use aws_lc_rs::digest;
use webauthn_rs::prelude::{Passkey, Url, Uuid, Webauthn, WebauthnBuilder};

use crate::clock::MINUTE;
use crate::store::StoreError;

/// How long a started ceremony may be finished.
pub const CEREMONY_LIFETIME: i64 = 5 * MINUTE;

/// Why a passkey ceremony did not succeed. The web layer shows one calm message for all of
/// the `Rejected`-like cases; the detail is for the logs.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No live ceremony: never started, already finished (a replay), or expired.
    #[error("no passkey ceremony is in progress (expired or already used)")]
    NoCeremony,
    /// The browser's answer failed verification: signature, challenge, origin, RP id, user
    /// verification or counter.
    #[error("the passkey response was refused: {0}")]
    Rejected(String),
    /// The credential is not (or no longer) registered, or belongs to another account.
    #[error("the passkey is not registered to this account")]
    UnknownCredential,
    /// The authenticator offered a credential that is already registered.
    #[error("this passkey is already registered")]
    AlreadyRegistered,
}

impl From<webauthn_rs::prelude::WebauthnError> for PasskeyError {
    fn from(e: webauthn_rs::prelude::WebauthnError) -> Self {
        PasskeyError::Rejected(e.to_string())
    }
}

/// Builds the relying party from the issuer URL.
///
/// WebAuthn needs a domain name as RP id: browsers refuse IP addresses. An issuer on an IP
/// address (a test server on 127.0.0.1) gets a relying party for `localhost` on the same port,
/// so the service starts, and passkeys simply do not work until it is reached by name.
pub fn relying_party(issuer: &str) -> anyhow::Result<Webauthn> {
    let origin = Url::parse(issuer).map_err(|e| anyhow::anyhow!("the issuer is not a URL: {e}"))?;
    let origin = match origin.domain() {
        Some(_) => origin,
        None => {
            tracing::warn!(issuer, "passkeys need the issuer to be a domain name, not an IP address: they are disabled");
            let mut local = origin.clone();
            local.set_host(Some("localhost")).map_err(|e| anyhow::anyhow!("issuer host: {e}"))?;
            local
        }
    };
    let rp_id = origin.domain().ok_or_else(|| anyhow::anyhow!("the issuer has no host"))?.to_string();
    let webauthn = WebauthnBuilder::new(&rp_id, &origin)
        .map_err(|e| anyhow::anyhow!("passkey relying party for {issuer}: {e}"))?
        .rp_name("Citizen ID")
        .build()
        .map_err(|e| anyhow::anyhow!("passkey relying party for {issuer}: {e}"))?;
    Ok(webauthn)
}

/// The WebAuthn user handle of an account: derived from the account id (SHA-256, first 16
/// bytes), so every passkey of one account carries the same handle (an authenticator keeps
/// one passkey per user and site) without storing another identifier, and the handle says
/// nothing about the citizen.
pub fn user_handle(account_id: &str) -> Uuid {
    let hash = digest::digest(&digest::SHA256, account_id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_ref()[..16]);
    Uuid::from_bytes(bytes)
}

/// The credential id as stored (base64url, no padding).
pub fn credential_id(passkey: &Passkey) -> String {
    crate::crypto::b64url(passkey.cred_id())
}

/// The signature counter and backup flags inside a serialised passkey, for the columns that
/// mirror them. webauthn-rs keeps them private; its serialised form is stable (it is what
/// applications store).
pub(crate) fn counters(passkey: &Passkey) -> (i64, bool, bool) {
    let v = serde_json::to_value(passkey).unwrap_or_default();
    let cred = &v["cred"];
    (
        cred["counter"].as_i64().unwrap_or(0),
        cred["backup_eligible"].as_bool().unwrap_or(false),
        cred["backup_state"].as_bool().unwrap_or(false),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_issuer() {
        assert!(relying_party("https://auth.example.org").is_ok());
        assert!(relying_party("http://localhost:8080").is_ok());
        assert!(relying_party("http://127.0.0.1:8080").is_ok(), "an IP issuer still starts");
        assert!(relying_party("not a url").is_err());
    }

    #[test]
    fn user_handles_are_stable_and_distinct() {
        assert_eq!(user_handle("a"), user_handle("a"));
        assert_ne!(user_handle("a"), user_handle("b"));
    }
}
