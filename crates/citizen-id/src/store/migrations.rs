//! Versioned migrations, one folder per backend with identical file names.
//!
//! A small runner rather than `sqlx::migrate!`: it needs no macros, works through the Any
//! driver, and on PostgreSQL takes an advisory lock so several instances starting together
//! apply each migration exactly once.

use sqlx::Row as _;

use super::{Backend, Db};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// One migration: the same file name in both backends' folders.
macro_rules! migration {
    ($version:expr, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sqlite: include_str!(concat!("../../migrations/sqlite/", $name, ".sql")),
            postgres: include_str!(concat!("../../migrations/postgres/", $name, ".sql")),
        }
    };
}

const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_foundation"),
    migration!(2, "0002_proofing"),
    migration!(3, "0003_passkeys"),
    migration!(4, "0004_id_tokens"),
    migration!(5, "0005_audit_erasure"),
    migration!(6, "0006_id_token_on_code"),
    migration!(7, "0007_sliding_rate_limits"),
    migration!(8, "0008_key_signs_from"),
    migration!(9, "0009_security_round"),
];

pub(super) async fn apply(db: &Db) -> anyhow::Result<()> {
    let mut conn = db.pool.acquire().await?;
    if db.backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock(7346001)").execute(&mut *conn).await?;
    }
    let result = apply_locked(db, &mut conn).await;
    if db.backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock(7346001)").execute(&mut *conn).await?;
    }
    result
}

async fn apply_locked(db: &Db, conn: &mut sqlx::pool::PoolConnection<sqlx::Any>) -> anyhow::Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut **conn)
    .await?;
    let rows = sqlx::query("SELECT version FROM schema_migrations").fetch_all(&mut **conn).await?;
    let applied: Vec<i64> = rows.iter().map(|r| r.try_get::<i64, _>(0)).collect::<Result<_, _>>()?;
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let sql = match db.backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        let mut tx = sqlx::Acquire::begin(&mut **conn).await?;
        for statement in split_statements(sql) {
            sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(crate::clock::now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(migration = m.name, "applied migration");
    }
    Ok(())
}

/// Splits a migration file into statements: strips `--` comments, splits on `;`.
fn split_statements(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .map(|line| match line.find("--") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}
