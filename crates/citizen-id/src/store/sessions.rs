//! Server-side browser sessions, shared by every instance through the database. The cookie
//! holds a random id; only its SHA-256 is stored, so a database copy cannot hijack sessions.

use sqlx::Row as _;

use super::{Db, StoreResult};

#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub data: String,
    pub account_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Db {
    pub async fn session(&self, id_hash: &str, now: i64) -> StoreResult<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT data, account_id, created_at, expires_at FROM sessions \
             WHERE id_hash = $1 AND expires_at > $2 AND idle_expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(r) => Some(SessionRecord {
                data: r.try_get("data")?,
                account_id: r.try_get("account_id")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            }),
            None => None,
        })
    }

    /// Writes the session (insert or replace), sliding its idle expiry.
    pub async fn save_session(
        &self,
        id_hash: &str,
        data: &str,
        account_id: Option<&str>,
        created_at: i64,
        idle_expires_at: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, data, account_id, created_at, idle_expires_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id_hash) DO UPDATE SET data = excluded.data, account_id = excluded.account_id, \
             idle_expires_at = excluded.idle_expires_at, expires_at = excluded.expires_at",
        )
        .bind(id_hash)
        .bind(data)
        .bind(account_id)
        .bind(created_at)
        .bind(idle_expires_at)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(self.pool()).await?;
        Ok(())
    }

    /// Remembers a browser as a registered device (`Cd`) for the account.
    pub async fn remember_device(&self, token_hash: &str, account_id: &str, now: i64, expires_at: i64) -> StoreResult<()> {
        sqlx::query("INSERT INTO remembered_devices (token_hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(account_id)
            .bind(now)
            .bind(expires_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// True when this browser token is a live remembered device of this account.
    pub async fn is_remembered_device(&self, token_hash: &str, account_id: &str, now: i64) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 FROM remembered_devices WHERE token_hash = $1 AND account_id = $2 AND expires_at > $3")
            .bind(token_hash)
            .bind(account_id)
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }
}
