//! Ceremony state between a start and its finish, kept on the server.
//!
//! webauthn-rs hands back a state value with every challenge and warns that it must stay
//! server-side: a client that could send it back could replay a challenge. We store it in
//! `webauthn_ceremonies` under the SHA-256 of a random id; the browser session holds only the
//! id. Taking it deletes it (one atomic statement), so a finish can run once; it is worthless
//! after [`CEREMONY_LIFETIME`]. The state is typed: what kind of ceremony a row holds is
//! decided here, never guessed by the caller.

use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{DiscoverableAuthentication, PasskeyAuthentication, PasskeyRegistration};

use super::{CEREMONY_LIFETIME, PasskeyError};
use crate::clock;
use crate::crypto::{random_token, sha256_hex};
use crate::store::Db;

/// The three ceremonies the service runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CeremonyState {
    /// Adding a passkey to an account.
    Register(PasskeyRegistration),
    /// Sign-in with whichever passkey the authenticator offers (usernameless, autofill).
    SignIn(DiscoverableAuthentication),
    /// Sign-in after the citizen typed their email: only that account's passkeys are offered.
    SignInAccount(PasskeyAuthentication),
}

impl CeremonyState {
    fn kind(&self) -> &'static str {
        match self {
            CeremonyState::Register(_) => "register",
            CeremonyState::SignIn(_) => "signin",
            CeremonyState::SignInAccount(_) => "signin_account",
        }
    }

    fn to_json(&self) -> String {
        match self {
            CeremonyState::Register(s) => serde_json::to_string(s),
            CeremonyState::SignIn(s) => serde_json::to_string(s),
            CeremonyState::SignInAccount(s) => serde_json::to_string(s),
        }
        .expect("ceremony state serialises")
    }

    fn from_json(kind: &str, state: &str) -> Option<CeremonyState> {
        match kind {
            "register" => serde_json::from_str(state).ok().map(CeremonyState::Register),
            "signin" => serde_json::from_str(state).ok().map(CeremonyState::SignIn),
            "signin_account" => serde_json::from_str(state).ok().map(CeremonyState::SignInAccount),
            _ => None,
        }
    }
}

/// A ceremony as taken back: its state, and the account it is bound to, if any. A sign-in
/// bound to an account accepts only that account's passkeys.
#[derive(Debug)]
pub struct Ceremony {
    pub account_id: Option<String>,
    pub state: CeremonyState,
}

/// Stores a ceremony and returns the id the session keeps.
pub async fn store(db: &Db, account_id: Option<&str>, state: &CeremonyState) -> Result<String, PasskeyError> {
    let id = random_token(32);
    db.insert_ceremony(&sha256_hex(&id), state.kind(), account_id, &state.to_json(), clock::now_ms() + CEREMONY_LIFETIME).await?;
    Ok(id)
}

/// Takes the ceremony `id` (at most once, and only before it expires).
pub async fn take(db: &Db, id: &str) -> Result<Ceremony, PasskeyError> {
    let row = db.take_ceremony(&sha256_hex(id), clock::now_ms()).await?.ok_or(PasskeyError::NoCeremony)?;
    let state = CeremonyState::from_json(&row.kind, &row.state).ok_or(PasskeyError::NoCeremony)?;
    Ok(Ceremony { account_id: row.account_id, state })
}
