//! Wrong-password counters (`accounts::throttle` has the rules). Keys are HMACs under the
//! pepper, so the table holds no email or IP address.

use sqlx::Row as _;

use super::{Db, StoreResult};

/// A counter as read: consecutive failures and the time of the last (unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failures {
    pub failures: i64,
    pub last_failure_at: i64,
}

impl Db {
    pub async fn password_failures(&self, key: &str) -> StoreResult<Failures> {
        let row = sqlx::query("SELECT failures, last_failure_at FROM password_failures WHERE counter_key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Failures { failures: r.try_get(0)?, last_failure_at: r.try_get(1)? },
            None => Failures::default(),
        })
    }

    /// Counts one failure on `key`, starting again from one when the last was before
    /// `forget_before`. One statement, so parallel failures from several instances all count.
    pub async fn record_password_failure(&self, key: &str, now: i64, forget_before: i64) -> StoreResult<Failures> {
        let row = sqlx::query(
            "INSERT INTO password_failures (counter_key, failures, last_failure_at) VALUES ($1, 1, $2) \
             ON CONFLICT (counter_key) DO UPDATE SET \
               failures = CASE WHEN password_failures.last_failure_at < $3 THEN 1 ELSE password_failures.failures + 1 END, \
               last_failure_at = excluded.last_failure_at \
             RETURNING failures, last_failure_at",
        )
        .bind(key)
        .bind(now)
        .bind(forget_before)
        .fetch_one(self.pool())
        .await?;
        Ok(Failures { failures: row.try_get(0)?, last_failure_at: row.try_get(1)? })
    }

    pub async fn clear_password_failures(&self, keys: &[&str]) -> StoreResult<()> {
        for key in keys {
            sqlx::query("DELETE FROM password_failures WHERE counter_key = $1").bind(*key).execute(self.pool()).await?;
        }
        Ok(())
    }
}
