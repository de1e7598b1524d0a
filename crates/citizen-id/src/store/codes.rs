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
    /// No live code (never sent, used, expired, or its tries all taken).
    Expired,
    /// Not a six-digit code at all: a validation error, no try spent.
    Malformed,
}

impl CodeCheck {
    /// "You have 2 more tries." / "You have 1 more try."
    pub fn tries_left(remaining: i64) -> String {
        if remaining == 1 { "You have 1 more try.".into() } else { format!("You have {remaining} more tries.") }
    }
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

    /// Checks a code. A try is taken before the comparison, in one statement that only
    /// succeeds while tries remain, so parallel guesses cannot share one try: of 30 at once,
    /// `max_attempts` are compared and the rest find the code spent. A correct code is then
    /// consumed atomically (a second use finds nothing); the `max_attempts`-th wrong one kills
    /// the code.
    pub async fn check_code(
        &self,
        purpose: &str,
        subject: &str,
        matches: impl Fn(&str) -> bool,
        max_attempts: i64,
        now: i64,
    ) -> StoreResult<CodeCheck> {
        let row = sqlx::query(
            "UPDATE one_time_codes SET attempts = attempts + 1 \
             WHERE id = (SELECT id FROM one_time_codes \
                         WHERE subject = $1 AND purpose = $2 AND consumed_at IS NULL AND expires_at > $3 \
                         ORDER BY created_at DESC LIMIT 1) \
               AND consumed_at IS NULL AND attempts < $4 \
             RETURNING id, code_hash, attempts",
        )
        .bind(subject)
        .bind(purpose)
        .bind(now)
        .bind(max_attempts)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(CodeCheck::Expired) };
        let id: String = row.try_get("id")?;
        let hash: String = row.try_get("code_hash")?;
        let attempts: i64 = row.try_get("attempts")?;
        if matches(&hash) {
            let done = sqlx::query("UPDATE one_time_codes SET consumed_at = $2 WHERE id = $1 AND consumed_at IS NULL")
                .bind(&id)
                .bind(now)
                .execute(self.pool())
                .await?;
            return Ok(if done.rows_affected() == 1 { CodeCheck::Accepted } else { CodeCheck::Expired });
        }
        if attempts >= max_attempts {
            sqlx::query("UPDATE one_time_codes SET consumed_at = $2 WHERE id = $1 AND consumed_at IS NULL")
                .bind(&id)
                .bind(now)
                .execute(self.pool())
                .await?;
            return Ok(CodeCheck::TooManyAttempts);
        }
        Ok(CodeCheck::Wrong { remaining: max_attempts - attempts })
    }
}
