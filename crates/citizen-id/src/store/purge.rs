//! Deleting rows whose lifetime has passed, without reading the tables that matter at scale.
//!
//! Refresh tokens live thirty days and authorization codes are kept while the ID token they
//! issued lives; at national scale those tables hold millions of rows, and every instance purges
//! every few minutes. An index on their expiry columns would cost the token endpoint a B-tree
//! more to write per token (measured on SQLite with the refresh tokens' and client assertions'
//! expiry indexed: +3.5 WAL frames per batch of ten redemptions, +13-20% of its database time).
//! Their keys already sort by issue time (`crypto::secret_key`), and a row can only have expired
//! once it was issued more than its lifetime ago, so the purge walks the primary key up to that
//! point instead: only rows old enough to have expired are read. The expiry test is kept
//! besides, so a purge never deletes more than "expired" would.
//!
//! Keys of secrets made before the time prefix existed are bare hashes and sort anywhere; a
//! second walk from above any time prefix takes those (almost all of them; the few that fall
//! between the two bounds go once the first bound passes them).

use super::{Db, StoreResult};
use crate::crypto::secret_key_floor;

/// How long after it was issued a row may still matter, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// A refresh token: its lifetime.
    pub refresh_tokens: i64,
    /// An authorization code: its lifetime, then its ID token's (kept for single sign-on).
    pub authorization_codes: i64,
}

impl Retention {
    pub fn from_lifetimes(l: &crate::config::TokenLifetimes) -> Retention {
        Retention { refresh_tokens: l.refresh_token, authorization_codes: l.authorization_code + l.id_token }
    }
}

/// Time-prefixed keys are never issued this far ahead of the purging clock (instances' clocks
/// agree far better): keys above the bound are bare hashes.
const FUTURE_BOUND_MS: i64 = 24 * 3600 * 1000;

/// Expired refresh tokens, walked along the key (`$1` the key floor of the oldest issue time that
/// can still be live, `$2` now); the same from above every time prefix for bare-hash keys.
pub(super) const PURGE_REFRESH_TOKENS: &str = "DELETE FROM refresh_tokens WHERE token_hash < $1 AND expires_at < $2";
pub(super) const PURGE_LEGACY_REFRESH_TOKENS: &str = "DELETE FROM refresh_tokens WHERE token_hash >= $1 AND expires_at < $2";
/// A consumed code stays while the ID token it issued lives (single sign-on looks it up).
pub(super) const PURGE_CODES: &str =
    "DELETE FROM authorization_codes WHERE code_hash < $1 AND expires_at < $2 AND (id_token_expires_at IS NULL OR id_token_expires_at < $2)";
pub(super) const PURGE_LEGACY_CODES: &str =
    "DELETE FROM authorization_codes WHERE code_hash >= $1 AND expires_at < $2 AND (id_token_expires_at IS NULL OR id_token_expires_at < $2)";

impl Db {
    /// Deletes rows whose lifetime has passed: codes, sessions, used assertion ids, rate buckets.
    pub async fn purge_expired(&self, now: i64, retention: Retention) -> StoreResult<()> {
        let future = secret_key_floor(now + FUTURE_BOUND_MS);
        for (sql, floor) in [
            (PURGE_REFRESH_TOKENS, secret_key_floor(now - retention.refresh_tokens)),
            (PURGE_LEGACY_REFRESH_TOKENS, future.clone()),
            (PURGE_CODES, secret_key_floor(now - retention.authorization_codes)),
            (PURGE_LEGACY_CODES, future),
        ] {
            sqlx::query(sql).bind(floor).bind(now).execute(self.pool()).await?;
        }
        // Tables bounded by short lifetimes or by what is active (or keyed by values that do not
        // sort by time): read whole.
        for sql in [
            "DELETE FROM one_time_codes WHERE expires_at < $1",
            "DELETE FROM sessions WHERE expires_at < $1 OR idle_expires_at < $1",
            "DELETE FROM client_assertions WHERE expires_at < $1",
            "DELETE FROM remembered_devices WHERE expires_at < $1",
            "DELETE FROM asserted_identity_jtis WHERE expires_at < $1",
            "DELETE FROM webauthn_ceremonies WHERE expires_at < $1",
        ] {
            sqlx::query(sql).bind(now).execute(self.pool()).await?;
        }
        sqlx::query("DELETE FROM rate_limits WHERE window_start < $1").bind(now - 24 * 3600 * 1000).execute(self.pool()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> (Db, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display())).await.unwrap();
        (db, dir)
    }

    /// The point of walking the key: SQLite searches the primary key's index for the rows old
    /// enough, rather than scanning the table.
    #[tokio::test]
    async fn the_big_tables_are_walked_along_their_keys() {
        let (db, _dir) = db().await;
        for sql in [PURGE_REFRESH_TOKENS, PURGE_LEGACY_REFRESH_TOKENS, PURGE_CODES, PURGE_LEGACY_CODES] {
            let rows: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}"))).bind("0").bind(0i64).fetch_all(db.pool()).await.unwrap();
            let plan: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
            assert!(plan.iter().any(|d| d.starts_with("SEARCH") && d.contains("INDEX")), "{sql}: {plan:?}");
            assert!(!plan.iter().any(|d| d.starts_with("SCAN")), "{sql}: {plan:?}");
        }
    }
}
