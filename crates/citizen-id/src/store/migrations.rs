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

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_foundation",
        sqlite: include_str!("../../migrations/sqlite/0001_foundation.sql"),
        postgres: include_str!("../../migrations/postgres/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "0002_proofing",
        sqlite: include_str!("../../migrations/sqlite/0002_proofing.sql"),
        postgres: include_str!("../../migrations/postgres/0002_proofing.sql"),
    },
    Migration {
        version: 3,
        name: "0003_passkeys",
        sqlite: include_str!("../../migrations/sqlite/0003_passkeys.sql"),
        postgres: include_str!("../../migrations/postgres/0003_passkeys.sql"),
    },
    Migration {
        version: 4,
        name: "0004_id_tokens",
        sqlite: include_str!("../../migrations/sqlite/0004_id_tokens.sql"),
        postgres: include_str!("../../migrations/postgres/0004_id_tokens.sql"),
    },
    Migration {
        version: 5,
        name: "0005_audit_erasure",
        sqlite: include_str!("../../migrations/sqlite/0005_audit_erasure.sql"),
        postgres: include_str!("../../migrations/postgres/0005_audit_erasure.sql"),
    },
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
