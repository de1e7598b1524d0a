//! Re-authentication before sensitive changes (OWASP ASVS 5.0 V7.5): what "fresh" means, the
//! state of a "Confirm it's you" in progress, and the one current-password check that
//! Settings, deletion and the confirm page share, rate limited and counted like sign-in.
//! The pages are in `web::journeys::reauth`.

use domain::Email;
use serde::{Deserialize, Serialize};

use super::AccountError;
use super::limits::{self, Limit};
use super::signin::{PasswordOutcome, check_password};
use crate::state::AppState;
use crate::store::accounts::AccountRecord;

/// A "Confirm it's you" in progress, kept in the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reauth {
    /// The account it is for: a confirmation never carries over to another sign-in.
    pub account_id: String,
    /// Where to go once confirmed: a local path, checked when it was set ([`local_path`]).
    pub next: String,
    /// The password was right; the SMS code is next.
    #[serde(default)]
    pub password_ok: bool,
    /// The passkey ceremony started from the confirm page, bound to this account.
    #[serde(default)]
    pub passkey_ceremony: Option<String>,
}

/// Whether a session whose credential was last presented at `fresh_at` (unix seconds, the
/// session's `Authenticated::fresh_at`) presented the password and an SMS code, or a passkey,
/// in this browser within the last `window_ms` (ASVS 7.5.1–7.5.3). `fresh_at` is set only by
/// those sign-ins and by "Confirm it's you": a remembered device, SSO and asserted sign-ins
/// leave it empty.
pub fn is_fresh(fresh_at: Option<i64>, window_ms: i64, now_ms: i64) -> bool {
    fresh_at.is_some_and(|at| at * 1000 > now_ms - window_ms && at * 1000 <= now_ms + 60_000)
}

/// `next` when it is a path on this service (no scheme, no host, no `//` or `\` that a browser
/// would read as another host), else `None`.
pub fn local_path(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() <= 200
        && next.chars().all(|c| c.is_ascii_graphic());
    ok.then_some(next)
}

/// The answer to a current-password check.
#[derive(Debug, PartialEq, Eq)]
pub enum CurrentPassword {
    Accepted,
    Rejected,
    /// Too many wrong passwords: the account is locked, as at sign-in.
    Locked,
    /// Too many attempts from this IP or at this account: nothing was checked.
    TooMany,
}

/// Checks the signed-in account's password, exactly as sign-in does (ASVS 6.3.1, NIST
/// 800-63B-4 3.2.2): the same per-IP and per-account limits, in the same buckets as sign-in
/// (so guesses here and at `/signin` share one budget), and a wrong password counts towards
/// the same lockout. Without this, a session could try passwords as fast as Argon2 allows.
pub async fn check_current_password(state: &AppState, account: &AccountRecord, entered: &str, ip: &str) -> Result<CurrentPassword, AccountError> {
    let Ok(email) = Email::parse(&account.email) else { return Ok(CurrentPassword::Rejected) };
    match (limits::per_ip(state, "signin", ip).await?, limits::per_account(state, "signin", email.as_str()).await?) {
        (Limit::Allowed, Limit::Allowed) => {}
        _ => return Ok(CurrentPassword::TooMany),
    }
    Ok(match check_password(state, &email, entered, ip).await? {
        PasswordOutcome::Accepted(a) if a.id == account.id => CurrentPassword::Accepted,
        PasswordOutcome::Accepted(_) | PasswordOutcome::Rejected => CurrentPassword::Rejected,
        PasswordOutcome::Locked => CurrentPassword::Locked,
        // Sign-in's throttles (`accounts::throttle`): wait, or the emailed link.
        PasswordOutcome::Wait(_) | PasswordOutcome::CheckEmail => CurrentPassword::TooMany,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        for ok in ["/settings", "/settings/email", "/account/passkeys"] {
            assert_eq!(local_path(ok), Some(ok));
        }
        for bad in ["https://evil.example/", "//evil.example", "/\\evil.example", "settings", "", "/a b", "/\u{e9}"] {
            assert_eq!(local_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn fresh_means_within_the_window() {
        let now = 1_000_000_000_000;
        let window = 15 * 60_000;
        assert!(is_fresh(Some(now / 1000), window, now));
        assert!(is_fresh(Some((now - window) / 1000 + 1), window, now));
        assert!(!is_fresh(Some((now - window) / 1000), window, now));
        assert!(!is_fresh(None, window, now), "a remembered device, SSO or an assertion");
    }
}
