//! Storage: one set of SQL over SQLite (embedded default) and PostgreSQL (production).
//!
//! Every query is written once in the portable subset both dialects share (`$1` placeholders,
//! `ON CONFLICT`, `RETURNING`, BIGINT times in unix ms); a backend branch appears only where the
//! dialects really differ (see `audit.rs`). Row types live beside the queries; nothing here knows
//! about HTTP.

pub mod accounts;
pub mod assertions;
pub mod audit;
mod batch_sql;
pub mod codes;
pub mod consents;
pub mod grants;
mod group_commit;
pub mod id_tokens;
pub mod keys;
pub mod lifecycle;
mod migrations;
pub mod outbox;
pub mod partners;
pub mod passkeys;
pub mod password_failures;
pub mod purge;
pub mod rate_limits;
pub mod sessions;

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Connection as _, Executor};

pub use sqlx::any::AnyRow as Row;

/// A pooled connection idle longer than this is pinged before use (see `Db::connect`).
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);

/// Which SQL dialect the pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A storage failure. `Unavailable` is what a caller shows as "service unavailable" (503);
/// `Conflict` is a unique-constraint race the caller may turn into a domain answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("a record with that key already exists")]
    Conflict,
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::ColumnNotFound(_) | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(err.to_string())
            }
            _ => StoreError::Unavailable(err.to_string()),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The database handle shared by every request and worker.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// Code redemptions and refresh rotations waiting for the database (`group_commit`).
    redemptions: std::sync::Arc<group_commit::BatchQueue<group_commit::Redemption>>,
    rotations: std::sync::Arc<group_commit::BatchQueue<group_commit::Rotation>>,
}

/// Runs `query` and returns its rows. On error, a query that opened its own transaction (SQLite's
/// batches of several statements, `opened_transaction`) is rolled back; a PostgreSQL statement is
/// rolled back with its error. A connection that cannot be rolled back is closed, never handed
/// back to the pool with a transaction open.
pub(super) async fn fetch_all_or_roll_back(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
    query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    opened_transaction: bool,
) -> StoreResult<Vec<Row>> {
    match query.fetch_all(&mut **conn).await {
        Ok(rows) => Ok(rows),
        Err(e) => {
            if opened_transaction && sqlx::query("ROLLBACK").execute(&mut **conn).await.is_err() {
                conn.close_on_drop();
            }
            Err(e.into())
        }
    }
}

impl Db {
    /// Connects to `url` (`sqlite://...` or `postgres://...`) and applies pending migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite: or postgres://");
        };
        let options = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(3))
            // sqlx pings every idle connection before handing it out by default: a second round
            // trip (to SQLite's worker thread, or to PostgreSQL) per statement. A connection used
            // moments ago is known to be alive; only one idle for a while is checked first (as
            // HikariCP's alive-bypass window does). A connection that dies in between fails one
            // statement (503, "try again") and is discarded.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > PING_IF_IDLE_FOR {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .max_connections(match backend {
                // One connection: SQLite takes one writer at a time anyway, and a connection
                // drops its whole page cache (and its memory map) at the start of a transaction
                // whenever another connection has written since. With several connections every
                // token exchange re-read its pages that way (measured: 830-841 µs of server CPU
                // per exchange with 4 connections, 732-744 with one; userinfo unchanged).
                Backend::Sqlite => 1,
                Backend::Postgres => 16,
            });
        let options = if backend == Backend::Sqlite {
            options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers run beside the one writer; NORMAL sync is durable in WAL mode.
                    // Pages are read through a memory map and cached per connection (8 MiB) rather
                    // than read(2) one 4 KiB page at a time once the file outgrows SQLite's 2 MiB
                    // default cache: the token endpoint's cost grew by a sixth as the file did.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; \
                         PRAGMA mmap_size = 268435456; PRAGMA cache_size = -8192; PRAGMA temp_store = MEMORY;",
                    )
                    .await?;
                    conn.execute(batch_sql::SQLITE_REDEEM_SCRATCH).await?;
                    conn.execute(batch_sql::SQLITE_ROTATE_SCRATCH).await?;
                    Ok(())
                })
            })
        } else {
            options
        };
        let pool = options.connect(url).await?;
        let db = Db { pool, backend, redemptions: Default::default(), rotations: Default::default() };
        migrations::apply(&db).await?;
        Ok(db)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// True when a trivial query succeeds: the readiness probe.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes the pool (used by tests that simulate an outage).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Reads a 0/1 flag column (SQLite cannot decode BOOLEAN through Any).
pub(crate) fn flag(v: bool) -> i64 {
    i64::from(v)
}
