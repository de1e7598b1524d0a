//! Where a citizen is in a multi-page journey, kept in the server-side session. Typed, so a
//! page can only be reached with the state it needs.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Journey {
    /// Creating an account: email first, then password, then mobile. Nothing is stored as an
    /// account until the mobile is verified.
    Register {
        /// Subject of this journey's codes.
        id: String,
        email: String,
        email_verified: bool,
        password_hash: Option<String>,
        mobile: Option<String>,
        /// Chose "Create a passkey instead of a password": no password is asked for, and the
        /// first passkey is made right after the account is written.
        #[serde(default)]
        passwordless: bool,
    },
    /// A passwordless account was just written (email and mobile verified); its first
    /// passkey is next, and only that signs the citizen in.
    PasskeySetup { account_id: String },
    /// Password accepted; the SMS code is next.
    SignIn { account_id: String },
    /// Forgotten password: email code, then SMS code, then a new password.
    Reset {
        id: String,
        email: String,
        account_id: Option<String>,
        email_verified: bool,
        mobile_verified: bool,
    },
    /// Changing the email in Settings: the new address is verified before it takes effect.
    ChangeEmail { id: String, email: String },
    /// Changing the mobile in Settings; `update_pds` also writes it to the NHS record (P9).
    ChangeMobile { id: String, mobile: String, update_pds: bool },
    /// The emailed link after too many wrong passwords (`accounts::throttle`), opened; the
    /// button on its page uses it.
    Unlock { key: String, token: String },
    /// AMNV: a code went to this mobile, the one on the PDS record when it was sent.
    Amnv { mobile: String },
}
