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
    },
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
}
