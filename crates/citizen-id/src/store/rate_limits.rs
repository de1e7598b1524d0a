//! Fixed-window counters in the database, so limits hold across every instance.

use sqlx::Row as _;

use super::{Db, StoreResult};

impl Db {
    /// Counts one hit on `bucket` in the window starting at `window_start`; returns the hits so far.
    pub async fn hit(&self, bucket: &str, window_start: i64) -> StoreResult<i64> {
        let row = sqlx::query(
            "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, 1) \
             ON CONFLICT (bucket) DO UPDATE SET \
               hits = CASE WHEN rate_limits.window_start = excluded.window_start THEN rate_limits.hits + 1 ELSE 1 END, \
               window_start = excluded.window_start \
             RETURNING hits",
        )
        .bind(bucket)
        .bind(window_start)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get(0)?)
    }

    /// The hits counted so far on `bucket` in this window, without adding one.
    pub async fn peek_hits(&self, bucket: &str, window_start: i64) -> StoreResult<i64> {
        let row = sqlx::query("SELECT hits FROM rate_limits WHERE bucket = $1 AND window_start = $2")
            .bind(bucket)
            .bind(window_start)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?.unwrap_or(0))
    }
}
