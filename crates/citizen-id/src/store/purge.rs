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

use super::{Backend, Db, StoreResult};
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

/// The PostgreSQL advisory lock one purging instance holds ("cid_purg").
pub const PURGE_LOCK: i64 = 0x6369_645f_7075_7267;

/// Where the purge's statements run: the pool (SQLite: other requests go between statements on
/// its one connection) or the connection holding the advisory lock (PostgreSQL).
enum Target<'a> {
    Pool(&'a sqlx::AnyPool),
    Conn(&'a mut sqlx::AnyConnection),
}

impl Target<'_> {
    async fn delete(&mut self, query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>) -> StoreResult<u64> {
        let done = match self {
            Target::Pool(pool) => query.execute(*pool).await?,
            Target::Conn(conn) => query.execute(&mut **conn).await?,
        };
        Ok(done.rows_affected())
    }
}

impl Db {
    /// Deletes rows whose lifetime has passed: codes, tokens, sessions, used assertion ids, rate
    /// buckets. Returns the rows deleted, or `None` when another instance sharing the PostgreSQL
    /// database was purging at the time (each instance tries every few minutes; one at a time is
    /// enough, and two would only queue behind each other's row locks).
    pub async fn purge_expired(&self, now: i64, retention: Retention) -> StoreResult<Option<u64>> {
        let started = std::time::Instant::now();
        let deleted = match self.backend() {
            Backend::Sqlite => purge(&mut Target::Pool(self.pool()), now, retention).await?,
            Backend::Postgres => {
                let mut conn = self.pool().acquire().await?;
                let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(PURGE_LOCK).fetch_one(&mut *conn).await?;
                if !locked {
                    metrics::counter!("citizen_id_purge_skipped_total").increment(1);
                    return Ok(None);
                }
                let result = purge(&mut Target::Conn(&mut conn), now, retention).await;
                // A session-level lock goes with its connection: one that could not be unlocked
                // (or whose purge failed midway) is closed, never handed back to the pool locked.
                let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)").bind(PURGE_LOCK).execute(&mut *conn).await;
                if result.is_err() || unlocked.is_err() {
                    conn.close_on_drop();
                }
                result?
            }
        };
        metrics::counter!("citizen_id_purged_rows_total").increment(deleted);
        metrics::histogram!("citizen_id_purge_duration_seconds").record(started.elapsed().as_secs_f64());
        Ok(Some(deleted))
    }
}

async fn purge(target: &mut Target<'_>, now: i64, retention: Retention) -> StoreResult<u64> {
    let mut deleted = 0;
    let future = secret_key_floor(now + FUTURE_BOUND_MS);
    for (sql, floor) in [
        (PURGE_REFRESH_TOKENS, secret_key_floor(now - retention.refresh_tokens)),
        (PURGE_LEGACY_REFRESH_TOKENS, future.clone()),
        (PURGE_CODES, secret_key_floor(now - retention.authorization_codes)),
        (PURGE_LEGACY_CODES, future),
    ] {
        deleted += target.delete(sqlx::query(sql).bind(floor).bind(now)).await?;
    }
    // Tables bounded by short lifetimes or by what is active (or keyed by values that do not sort
    // by time): read whole.
    for sql in [
        "DELETE FROM one_time_codes WHERE expires_at < $1",
        "DELETE FROM sessions WHERE expires_at < $1 OR idle_expires_at < $1",
        "DELETE FROM client_assertions WHERE expires_at < $1",
        "DELETE FROM remembered_devices WHERE expires_at < $1",
        "DELETE FROM asserted_identity_jtis WHERE expires_at < $1",
        "DELETE FROM webauthn_ceremonies WHERE expires_at < $1",
    ] {
        deleted += target.delete(sqlx::query(sql).bind(now)).await?;
    }
    deleted += target.delete(sqlx::query("DELETE FROM rate_limits WHERE window_start < $1").bind(now - 24 * 3600 * 1000)).await?;
    Ok(deleted)
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
