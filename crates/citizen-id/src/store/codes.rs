//! One-time codes (email and SMS): stored as HMACs, single use, expiring, attempt-limited.

use sqlx::Row as _;

use super::outbox::{NewOutboxMessage, enqueue};
use super::{Db, StoreResult};

/// The outcome of checking a code, as the journey needs to tell the citizen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    Accepted,
    /// Wrong code; this many tries remain for it.
    Wrong { remaining: i64 },
    /// Too many wrong tries: the code is dead, a new one is needed.
    TooManyAttempts,
    /// No live code (never sent, used, or expired).
    Expired,
}

impl Db {
    /// Stores a new code for `(subject, purpose)`, replacing any earlier one, and queues the
    /// message that carries it in the same transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_code(
        &self,
        id: &str,
        purpose: &str,
        subject: &str,
        code_hash: &str,
        now: i64,
        expires_at: i64,
        message: Option<&NewOutboxMessage>,
    ) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE one_time_codes SET consumed_at = $3 WHERE subject = $1 AND purpose = $2 AND consumed_at IS NULL")
            .bind(subject)
            .bind(purpose)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO one_time_codes (id, purpose, subject, code_hash, created_at, expires_at, attempts) VALUES ($1, $2, $3, $4, $5, $6, 0)",
        )
        .bind(id)
        .bind(purpose)
        .bind(subject)
        .bind(code_hash)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        if let Some(message) = message {
            enqueue(&mut tx, message, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// How many codes were created for `(subject, purpose)` since `since` (the sending cap).
    pub async fn codes_sent_since(&self, subject: &str, purpose: &str, since: i64) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM one_time_codes WHERE subject = $1 AND purpose = $2 AND created_at >= $3")
            .bind(subject)
            .bind(purpose)
            .bind(since)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Checks a code. A correct code is consumed atomically (a second use finds nothing);
    /// a wrong one spends an attempt, and the `max_attempts`-th wrong one kills the code.
    pub async fn check_code(
        &self,
        purpose: &str,
        subject: &str,
        matches: impl Fn(&str) -> bool,
        max_attempts: i64,
        now: i64,
    ) -> StoreResult<CodeCheck> {
        let row = sqlx::query(
            "SELECT id, code_hash, attempts FROM one_time_codes \
             WHERE subject = $1 AND purpose = $2 AND consumed_at IS NULL AND expires_at > $3 \
             ORDER BY created_at DESC LIMIT 1",
        )
        .bind(subject)
        .bind(purpose)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(CodeCheck::Expired) };
        let id: String = row.try_get("id")?;
        let hash: String = row.try_get("code_hash")?;
        if matches(&hash) {
            let done = sqlx::query("UPDATE one_time_codes SET consumed_at = $2 WHERE id = $1 AND consumed_at IS NULL")
                .bind(&id)
                .bind(now)
                .execute(self.pool())
                .await?;
            return Ok(if done.rows_affected() == 1 { CodeCheck::Accepted } else { CodeCheck::Expired });
        }
        let row = sqlx::query(
            "UPDATE one_time_codes SET attempts = attempts + 1, \
             consumed_at = CASE WHEN attempts + 1 >= $2 THEN $3 ELSE consumed_at END \
             WHERE id = $1 RETURNING attempts",
        )
        .bind(&id)
        .bind(max_attempts)
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        let attempts: i64 = row.try_get(0)?;
        Ok(if attempts >= max_attempts {
            CodeCheck::TooManyAttempts
        } else {
            CodeCheck::Wrong { remaining: max_attempts - attempts }
        })
    }
}
