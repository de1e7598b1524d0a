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
//!
//! Every walk deletes in chunks of `CHUNK` rows, each its own statement and transaction, found
//! by key order in the database itself: a backlog never becomes one long delete.

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

/// Rows deleted per statement. A purge is a series of such chunks, each its own transaction,
/// so a backlog (the day's refresh tokens expiring together, a purge after downtime) never holds
/// the database in one long delete: on SQLite the token endpoint's batches and every other
/// request take their turns between chunks on the one connection; on PostgreSQL no transaction
/// runs long enough to hold back vacuum or pile up row locks.
pub const CHUNK: i64 = 500;

/// One table's walk: its key, the key range the walk keeps to (the time-ordered walks), and
/// which rows have expired (`$1` is now).
pub(super) struct Walk {
    pub table: &'static str,
    pub key: &'static str,
    /// A bound on the key, `$2` (the time-ordered walks): below a floor, or from a point upward.
    pub range: Option<Range>,
    pub expired: &'static str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Range {
    Below,
    From,
}

/// The time-ordered walks: expired refresh tokens and codes up to the key floor of the oldest
/// issue time that can still be live, then the same from above every time prefix for
/// bare-hash keys. A consumed code stays while the ID token it issued lives (single sign-on
/// looks it up).
pub(super) const REFRESH_TOKENS: Walk = Walk { table: "refresh_tokens", key: "token_hash", range: Some(Range::Below), expired: "expires_at < $1" };
pub(super) const LEGACY_REFRESH_TOKENS: Walk = Walk { range: Some(Range::From), ..REFRESH_TOKENS };
pub(super) const CODES: Walk = Walk {
    table: "authorization_codes",
    key: "code_hash",
    range: Some(Range::Below),
    expired: "expires_at < $1 AND (id_token_expires_at IS NULL OR id_token_expires_at < $1)",
};
pub(super) const LEGACY_CODES: Walk = Walk { range: Some(Range::From), ..CODES };

/// Tables bounded by short lifetimes or by what is active, or keyed by values that do not sort
/// by time: walked whole, in key order.
pub(super) const WHOLE: [Walk; 8] = [
    Walk { table: "one_time_codes", key: "id", range: None, expired: "expires_at < $1" },
    Walk { table: "sessions", key: "id_hash", range: None, expired: "(expires_at < $1 OR idle_expires_at < $1)" },
    Walk { table: "client_assertions", key: "client_id, jti", range: None, expired: "expires_at < $1" },
    Walk { table: "remembered_devices", key: "token_hash", range: None, expired: "expires_at < $1" },
    Walk { table: "asserted_identity_jtis", key: "issuer, jti", range: None, expired: "expires_at < $1" },
    Walk { table: "webauthn_ceremonies", key: "id_hash", range: None, expired: "expires_at < $1" },
    // A rate bucket counts for at most a day.
    Walk { table: "rate_limits", key: "bucket", range: None, expired: "window_start < $1 - 86400000" },
    // Wrong-password counts are forgotten 30 days after the last failure (accounts::throttle).
    Walk { table: "password_failures", key: "counter_key", range: None, expired: "last_failure_at < $1 - 2592000000" },
];

impl Walk {
    fn columns(&self) -> usize {
        self.key.split(',').count()
    }

    /// The statements' own parameters: now, and the range's bound.
    fn params(&self) -> usize {
        if self.range.is_some() { 2 } else { 1 }
    }

    /// `({key}) {op} (${first}, ...)`.
    fn compare(&self, op: &str, first: usize) -> String {
        let params: Vec<String> = (0..self.columns()).map(|i| format!("${}", first + i)).collect();
        format!("({}) {op} ({})", self.key, params.join(", "))
    }

    /// The conditions on the key: at most one lower and one upper bound. SQLite searches an
    /// index by the first lower and the first upper bound it meets, and only filters by the
    /// rest, so a redundant bound that came first (the floor before a chunk's end) would walk
    /// to the floor on every chunk. The cursor and the chunk's end come from rows inside the
    /// range, so each implies the range's bound on its side.
    fn key_bounds(&self, after: bool, until: bool) -> Vec<String> {
        let mut next = self.params() + 1;
        let mut bounds = Vec::new();
        if after {
            bounds.push(self.compare(">", next));
            next += self.columns();
        } else if self.range == Some(Range::From) {
            bounds.push(format!("{} >= $2", self.key));
        }
        if until {
            bounds.push(self.compare("<=", next));
        } else if self.range == Some(Range::Below) {
            bounds.push(format!("{} < $2", self.key));
        }
        bounds
    }

    fn condition(&self, after: bool, until: bool) -> String {
        let mut all = self.key_bounds(after, until);
        all.push(self.expired.to_owned());
        all.join(" AND ")
    }

    /// The key of the last row of the next chunk (`LIMIT 1 OFFSET CHUNK - 1`), in the database's
    /// own order, so the walk never compares keys itself (PostgreSQL's collation need not be
    /// byte order). No row: fewer than a chunk remain. `after` says whether a cursor is bound.
    pub(super) fn chunk_end_sql(&self, after: bool) -> String {
        let (key, table, condition) = (self.key, self.table, self.condition(after, false));
        format!("SELECT {key} FROM {table} WHERE {condition} ORDER BY {key} LIMIT 1 OFFSET {}", CHUNK - 1)
    }

    /// Deletes the expired rows after the cursor (when bound) up to the chunk's end (when bound).
    pub(super) fn delete_sql(&self, after: bool, until: bool) -> String {
        format!("DELETE FROM {} WHERE {}", self.table, self.condition(after, until))
    }
}

/// The PostgreSQL advisory lock one purging instance holds ("cid_purg").
pub const PURGE_LOCK: i64 = 0x6369_645f_7075_7267;

/// Where the purge's statements run: the pool (SQLite: other requests go between statements on
/// its one connection) or the connection holding the advisory lock (PostgreSQL).
enum Target<'a> {
    Pool(&'a sqlx::AnyPool),
    Conn(&'a mut sqlx::AnyConnection),
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

impl Target<'_> {
    async fn delete(&mut self, query: AnyQuery<'_>) -> StoreResult<u64> {
        let done = match self {
            Target::Pool(pool) => query.execute(*pool).await?,
            Target::Conn(conn) => query.execute(&mut **conn).await?,
        };
        Ok(done.rows_affected())
    }

    async fn key(&mut self, query: AnyQuery<'_>) -> StoreResult<Option<sqlx::any::AnyRow>> {
        Ok(match self {
            Target::Pool(pool) => query.fetch_optional(*pool).await?,
            Target::Conn(conn) => query.fetch_optional(&mut **conn).await?,
        })
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
    let future = secret_key_floor(now + FUTURE_BOUND_MS);
    let mut deleted = 0;
    for (walk, bound) in [
        (&REFRESH_TOKENS, secret_key_floor(now - retention.refresh_tokens)),
        (&LEGACY_REFRESH_TOKENS, future.clone()),
        (&CODES, secret_key_floor(now - retention.authorization_codes)),
        (&LEGACY_CODES, future),
    ] {
        deleted += walk_in_chunks(target, walk, now, Some(&bound)).await?;
    }
    for walk in &WHOLE {
        deleted += walk_in_chunks(target, walk, now, None).await?;
    }
    Ok(deleted)
}

/// Deletes a walk's expired rows a chunk at a time, in key order: find the key that ends the next
/// chunk, delete up to it, go on from there; the last (short) chunk is deleted to the end.
async fn walk_in_chunks(target: &mut Target<'_>, walk: &Walk, now: i64, bound: Option<&str>) -> StoreResult<u64> {
    debug_assert_eq!(bound.is_some(), walk.range.is_some(), "{}: the statements number their parameters by the range", walk.table);
    // The bound is bound even where a cursor or a chunk's end implies it and the statement no
    // longer names `$2` (both databases accept that; the tests walk both key shapes on both).
    let bind = |sql: &str| {
        let query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).bind(now);
        match bound {
            Some(b) => query.bind(b.to_owned()),
            None => query,
        }
    };
    let bind_key = |mut query: AnyQuery<'static>, key: &[String]| {
        for column in key {
            query = query.bind(column.clone());
        }
        query
    };
    let mut cursor: Option<Vec<String>> = None;
    let mut deleted = 0;
    loop {
        let after = cursor.is_some();
        let find = bind_key(bind(&walk.chunk_end_sql(after)), cursor.as_deref().unwrap_or_default());
        let end = target.key(find).await?.map(|row| key_of(&row, walk.columns())).transpose()?;
        let delete = bind_key(bind(&walk.delete_sql(after, end.is_some())), cursor.as_deref().unwrap_or_default());
        let delete = bind_key(delete, end.as_deref().unwrap_or_default());
        deleted += target.delete(delete).await?;
        match end {
            Some(end) => cursor = Some(end),
            None => return Ok(deleted),
        }
    }
}

fn key_of(row: &sqlx::any::AnyRow, columns: usize) -> StoreResult<Vec<String>> {
    use sqlx::Row as _;
    (0..columns).map(|i| Ok(row.try_get::<String, _>(i)?)).collect()
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
    /// enough, rather than scanning the table, in every statement of a chunked walk.
    #[tokio::test]
    async fn the_big_tables_are_walked_along_their_keys() {
        let (db, _dir) = db().await;
        for walk in [&REFRESH_TOKENS, &LEGACY_REFRESH_TOKENS, &CODES, &LEGACY_CODES] {
            for (sql, cursors) in [
                (walk.chunk_end_sql(false), 0),
                (walk.chunk_end_sql(true), 1),
                (walk.delete_sql(false, false), 0),
                (walk.delete_sql(true, false), 1),
                (walk.delete_sql(false, true), 1),
                (walk.delete_sql(true, true), 2),
            ] {
                let mut query = sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}"))).bind(0i64).bind("0");
                for _ in 0..cursors {
                    query = query.bind("0");
                }
                let rows: Vec<(i64, i64, i64, String)> = query.fetch_all(db.pool()).await.unwrap();
                let plan: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
                assert!(plan.iter().any(|d| d.starts_with("SEARCH") && d.contains("INDEX")), "{sql}: {plan:?}");
                assert!(!plan.iter().any(|d| d.starts_with("SCAN")), "{sql}: {plan:?}");
            }
        }
    }

    /// Every walk's statements are valid SQL for its table, with and without cursors (the
    /// composite keys compare as row values).
    #[tokio::test]
    async fn every_walk_prepares() {
        let (db, _dir) = db().await;
        let walks = [&REFRESH_TOKENS, &LEGACY_REFRESH_TOKENS, &CODES, &LEGACY_CODES].into_iter().chain(WHOLE.iter());
        for walk in walks {
            for after in [false, true] {
                for sql in [walk.chunk_end_sql(after), walk.delete_sql(after, true)] {
                    sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}"))).fetch_all(db.pool()).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                }
            }
        }
    }
}
