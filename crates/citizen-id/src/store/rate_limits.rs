//! Rate-limit counters in the database, so limits hold across every instance: per bucket the
//! hits of the current window and of the one before it (for a sliding estimate), or of one
//! fixed window (for quotas per calendar day).

use sqlx::Row as _;

use super::{Db, StoreResult};

/// The hits on a bucket in the current window and in the window just before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowHits {
    pub current: i64,
    pub previous: i64,
}

impl Db {
    /// Counts one hit on `bucket` in the window of `window_len` ms starting at `window_start`,
    /// carrying the last window's hits over as `previous` when that window is the one just
    /// before. One statement, so concurrent hits from several instances all count.
    pub async fn hit_sliding(&self, bucket: &str, window_start: i64, window_len: i64) -> StoreResult<WindowHits> {
        // Every SET expression reads the row as it was before the update, on both databases.
        let row = sqlx::query(
            "INSERT INTO rate_limits (bucket, window_start, hits, previous_hits) VALUES ($1, $2, 1, 0) \
             ON CONFLICT (bucket) DO UPDATE SET \
               previous_hits = CASE WHEN rate_limits.window_start = excluded.window_start THEN rate_limits.previous_hits \
                                    WHEN rate_limits.window_start = excluded.window_start - $3 THEN rate_limits.hits \
                                    ELSE 0 END, \
               hits = CASE WHEN rate_limits.window_start = excluded.window_start THEN rate_limits.hits + 1 ELSE 1 END, \
               window_start = excluded.window_start \
             RETURNING hits, previous_hits",
        )
        .bind(bucket)
        .bind(window_start)
        .bind(window_len)
        .fetch_one(self.pool())
        .await?;
        Ok(WindowHits { current: row.try_get(0)?, previous: row.try_get(1)? })
    }

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

    /// Takes back one hit counted by [`Db::hit_sliding`] in the window starting at
    /// `window_start` (an attempt that was refused, so it does not push the limit further
    /// away). Never below zero; a window that has moved on is left alone.
    pub async fn unhit(&self, bucket: &str, window_start: i64) -> StoreResult<()> {
        sqlx::query("UPDATE rate_limits SET hits = hits - 1 WHERE bucket = $1 AND window_start = $2 AND hits > 0")
            .bind(bucket)
            .bind(window_start)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
