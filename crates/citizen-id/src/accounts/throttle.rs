//! Who a wrong password slows down, and how (OWASP ASVS 5.0 V6.3.1 and V6.3.2, NIST SP
//! 800-63B-4 3.2.2). The rules:
//!
//! 1. Wrong passwords are counted per email address, and per email address and client IP,
//!    whether or not an account has that email: every answer below is the same for an
//!    unknown email as for a known one, and none says "locked".
//! 2. Per email and IP: the first [`FREE_TRIES`] wrong passwords cost nothing; each one after
//!    that must wait a delay that doubles, from one minute up to an hour ([`delay_after`]).
//!    The password is not even checked while the delay runs. The count is forgotten
//!    [`PAIR_MEMORY`] after its last failure (the lock has long ended then) and on a success.
//!    A stranger guessing from their own addresses slows only themselves: the citizen's own
//!    IP has no failures, so they sign in as usual.
//! 3. Per email, from every IP together: at [`CEILING`] consecutive failures, NIST's ceiling
//!    of "no more than 100", the password stops being checked at all for that email, from
//!    any IP, so no further guess can fail or succeed. Instead the answer is "check your
//!    email", and the owner (if there is one) is sent a link, at most one an hour, that
//!    clears the count: whoever is guessing, the citizen is never kept out for longer than
//!    it takes to open their email. The count also ends with a successful sign-in, and is
//!    forgotten 30 days after the last failure (the purge).
//! 4. Per IP, over all emails (password spraying): the per-minute limit in `limits::per_ip`.

use crate::clock::{self, HOUR, MINUTE};
use crate::crypto::hmac_hex;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::password_failures::Failures;

pub const FREE_TRIES: i64 = 5;
pub const CEILING: i64 = 100;
pub const PAIR_MEMORY: i64 = 24 * HOUR;

/// How long the next try waits after `failures` wrong passwords from one IP (rule 2).
pub fn delay_after(failures: i64) -> i64 {
    if failures < FREE_TRIES {
        return 0;
    }
    let doublings = (failures - FREE_TRIES).min(6) as u32;
    (MINUTE << doublings).min(HOUR)
}

/// The counters for one sign-in attempt.
pub struct Counters {
    email_key: String,
    pair_key: String,
}

/// Where an attempt stands before its password is checked.
#[derive(Debug, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Rule 2: wait this many ms.
    Wait(i64),
    /// Rule 3: only the emailed link goes on.
    Ceiling,
}

impl Counters {
    pub fn new(state: &AppState, email: &str, ip: &str) -> Counters {
        let pepper = state.kek.pepper();
        Counters { email_key: hmac_hex(pepper, &format!("pwfail-email:{email}")), pair_key: hmac_hex(pepper, &format!("pwfail-pair:{email}|{ip}")) }
    }

    pub async fn gate(&self, state: &AppState) -> Result<Gate, StoreError> {
        let now = clock::now_ms();
        if state.db.password_failures(&self.email_key).await?.failures >= CEILING {
            return Ok(Gate::Ceiling);
        }
        let Failures { failures, last_failure_at } = state.db.password_failures(&self.pair_key).await?;
        if last_failure_at < now - PAIR_MEMORY {
            return Ok(Gate::Open);
        }
        let until = last_failure_at + delay_after(failures);
        Ok(if until > now { Gate::Wait(until - now) } else { Gate::Open })
    }

    /// A wrong password: both counters go up. Returns the email's count.
    pub async fn failed(&self, state: &AppState) -> Result<i64, StoreError> {
        let now = clock::now_ms();
        state.db.record_password_failure(&self.pair_key, now, now - PAIR_MEMORY).await?;
        // The email's count is only forgotten by the purge (30 days), so never here.
        Ok(state.db.record_password_failure(&self.email_key, now, i64::MIN).await?.failures)
    }

    /// The right password: this IP's count and the email's consecutive count end.
    pub async fn succeeded(&self, state: &AppState) -> Result<(), StoreError> {
        state.db.clear_password_failures(&[&self.email_key, &self.pair_key]).await
    }

    /// The email's counter key: also the subject of its unlock link (rule 3).
    pub fn email_key(&self) -> &str {
        &self.email_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_after_the_free_tries_up_to_an_hour() {
        let minutes: Vec<i64> = (0..14).map(|f| delay_after(f) / MINUTE).collect();
        assert_eq!(minutes, [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
