//! Client assertions seen at the token endpoint, by jti (RFC 7523 3: a jti is used once).
//! The code redemption and refresh rotation batches record theirs with their own writes
//! (`store::grants`); this records one alone, for a request refused before those writes.

use super::grants::AssertionUse;
use super::{Db, StoreResult};

impl Db {
    /// Records the assertion's jti; false when it was recorded before (a replay).
    pub async fn spend_assertion(&self, assertion: &AssertionUse) -> StoreResult<bool> {
        let row = sqlx::query(
            "INSERT INTO client_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (client_id, jti) DO NOTHING RETURNING 1",
        )
        .bind(assertion.client_id.as_str())
        .bind(assertion.jti.as_str())
        .bind(assertion.expires_at)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }
}
