//! Rate limits on every guessable secret, counted in the database so they hold across
//! instances: per client IP per minute, and per account (email) per quarter hour.

use crate::clock::{self, MINUTE};
use crate::crypto::sha256_hex;
use crate::state::AppState;
use crate::store::StoreError;

#[derive(Debug, PartialEq, Eq)]
pub enum Limit {
    Allowed,
    Exceeded,
}

async fn hit(state: &AppState, bucket: String, limit: i64, window: i64) -> Result<Limit, StoreError> {
    let now = clock::now_ms();
    let hits = state.db.hit(&bucket, now - now % window).await?;
    if hits > limit {
        metrics::counter!("citizen_id_rate_limited_total").increment(1);
        Ok(Limit::Exceeded)
    } else {
        Ok(Limit::Allowed)
    }
}

/// One attempt at `action` from `ip`.
pub async fn per_ip(state: &AppState, action: &str, ip: &str) -> Result<Limit, StoreError> {
    hit(state, format!("ip:{action}:{ip}"), state.settings.limits.per_ip_per_minute, MINUTE).await
}

/// One attempt at `action` against the account named by `email` (known or not, so the
/// answer does not reveal which). The email is hashed: no personal data in the table.
pub async fn per_account(state: &AppState, action: &str, email: &str) -> Result<Limit, StoreError> {
    hit(state, format!("acct:{action}:{}", sha256_hex(email)), state.settings.limits.per_account_per_quarter_hour, 15 * MINUTE).await
}
