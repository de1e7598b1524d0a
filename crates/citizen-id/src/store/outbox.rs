//! The notification outbox. A message is written in the same transaction as the event that
//! needs it (a code, a password change), so nothing is sent for an event that rolled back and
//! nothing is lost while a provider is down: the delivery worker retries with backoff.
//! Recipient and content are sealed at rest and erased once delivered.

use sqlx::Row as _;

use super::{Db, StoreResult};

#[derive(Debug, Clone)]
pub struct NewOutboxMessage {
    pub id: String,
    pub channel: String,
    pub template: String,
    pub sealed_message: String,
}

#[derive(Debug, Clone)]
pub struct ClaimedMessage {
    pub id: String,
    pub channel: String,
    pub template: String,
    pub sealed_message: String,
    pub attempts: i64,
}

/// Adds a message inside the caller's transaction.
pub async fn enqueue(conn: &mut sqlx::AnyConnection, msg: &NewOutboxMessage, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO outbox (id, channel, template, sealed_message, created_at, attempts, next_attempt_at) VALUES ($1, $2, $3, $4, $5, 0, $5)",
    )
    .bind(&msg.id)
    .bind(&msg.channel)
    .bind(&msg.template)
    .bind(&msg.sealed_message)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Queues the notice of a change, when there is one, in the transaction that makes the change.
pub(super) async fn enqueue_notice(conn: &mut sqlx::AnyConnection, notice: Option<&NewOutboxMessage>, now: i64) -> StoreResult<()> {
    match notice {
        Some(msg) => enqueue(conn, msg, now).await,
        None => Ok(()),
    }
}

impl Db {
    pub async fn enqueue(&self, msg: &NewOutboxMessage, now: i64) -> StoreResult<()> {
        let mut conn = self.pool().acquire().await?;
        enqueue(&mut conn, msg, now).await
    }

    /// Claims up to `limit` due messages for `lease_ms`; another instance skips claimed rows.
    pub async fn claim_due_messages(&self, now: i64, lease_ms: i64, limit: i64) -> StoreResult<Vec<ClaimedMessage>> {
        let rows = sqlx::query(
            "SELECT id FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 \
             AND (locked_until IS NULL OR locked_until < $1) ORDER BY next_attempt_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut claimed = Vec::new();
        for row in rows {
            let id: String = row.try_get(0)?;
            let got = sqlx::query(
                "UPDATE outbox SET locked_until = $2 WHERE id = $1 AND sent_at IS NULL AND (locked_until IS NULL OR locked_until < $3) \
                 RETURNING id, channel, template, sealed_message, attempts",
            )
            .bind(&id)
            .bind(now + lease_ms)
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
            if let Some(r) = got {
                let sealed: Option<String> = r.try_get("sealed_message")?;
                claimed.push(ClaimedMessage {
                    id: r.try_get("id")?,
                    channel: r.try_get("channel")?,
                    template: r.try_get("template")?,
                    sealed_message: sealed.unwrap_or_default(),
                    attempts: r.try_get("attempts")?,
                });
            }
        }
        Ok(claimed)
    }

    pub async fn mark_sent(&self, id: &str, provider: &str, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE outbox SET sent_at = $2, provider = $3, sealed_message = NULL, locked_until = NULL, attempts = attempts + 1 WHERE id = $1")
            .bind(id)
            .bind(now)
            .bind(provider)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Schedules another try, or gives up (`next_attempt_at = None`) and erases the content.
    pub async fn mark_attempt_failed(&self, id: &str, error: &str, next_attempt_at: Option<i64>, now: i64) -> StoreResult<()> {
        match next_attempt_at {
            Some(at) => {
                sqlx::query("UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3, locked_until = NULL WHERE id = $1")
                    .bind(id)
                    .bind(at)
                    .bind(error)
                    .execute(self.pool())
                    .await?;
            }
            None => {
                sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1, failed_at = $2, last_error = $3, sealed_message = NULL, locked_until = NULL WHERE id = $1",
                )
                .bind(id)
                .bind(now)
                .bind(error)
                .execute(self.pool())
                .await?;
            }
        }
        Ok(())
    }

    /// Messages not yet delivered (for readiness and metrics).
    pub async fn outbox_backlog(&self) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL").fetch_one(self.pool()).await?;
        Ok(row.try_get(0)?)
    }
}
