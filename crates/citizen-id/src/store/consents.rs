//! Consent given by a citizen to a partner, and the partner's opaque per-citizen metadata.

use sqlx::Row as _;

use super::{Db, StoreResult};

impl Db {
    /// The scopes the citizen has agreed to share with the partner, if any.
    pub async fn consent(&self, account_id: &str, client_id: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT scope FROM consents WHERE account_id = $1 AND client_id = $2")
            .bind(account_id)
            .bind(client_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    pub async fn save_consent(&self, account_id: &str, client_id: &str, scope: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO consents (account_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (account_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
        )
        .bind(account_id)
        .bind(client_id)
        .bind(scope)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn client_user_metadata(&self, account_id: &str, client_id: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT value FROM client_user_metadata WHERE account_id = $1 AND client_id = $2")
            .bind(account_id)
            .bind(client_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Sets the value, or clears it when `value` is `None`.
    pub async fn set_client_user_metadata(&self, account_id: &str, client_id: &str, value: Option<&str>, now: i64) -> StoreResult<()> {
        match value {
            Some(v) => {
                sqlx::query(
                    "INSERT INTO client_user_metadata (account_id, client_id, value, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (account_id, client_id) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                )
                .bind(account_id)
                .bind(client_id)
                .bind(v)
                .bind(now)
                .execute(self.pool())
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM client_user_metadata WHERE account_id = $1 AND client_id = $2")
                    .bind(account_id)
                    .bind(client_id)
                    .execute(self.pool())
                    .await?;
            }
        }
        Ok(())
    }
}
