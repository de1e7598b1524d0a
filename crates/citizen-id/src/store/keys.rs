//! Token signing keys as stored: the private half sealed, the public half as a JWK.

use sqlx::Row as _;

use super::{Db, StoreResult};

#[derive(Debug, Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub sealed_private_key: String,
    pub public_jwk: String,
    pub created_at: i64,
    /// When it starts signing (a rotation publishes the new key first).
    pub signs_from: i64,
    /// When it stops signing (it stays published until `publish_until`).
    pub retired_at: Option<i64>,
    pub publish_until: Option<i64>,
}

impl Db {
    pub async fn insert_signing_key(&self, k: &SigningKeyRecord) -> StoreResult<()> {
        sqlx::query("INSERT INTO signing_keys (kid, private_key, public_jwk, created_at, signs_from) VALUES ($1, $2, $3, $4, $5)")
            .bind(&k.kid)
            .bind(&k.sealed_private_key)
            .bind(&k.public_jwk)
            .bind(k.created_at)
            .bind(k.signs_from)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Keys still published in JWKS, newest first.
    pub async fn published_signing_keys(&self, now: i64) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query(
            "SELECT kid, private_key, public_jwk, created_at, COALESCE(signs_from, created_at) AS signs_from, retired_at, publish_until \
             FROM signing_keys \
             WHERE publish_until IS NULL OR publish_until > $1 ORDER BY COALESCE(signs_from, created_at) DESC, kid DESC",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SigningKeyRecord {
                    kid: r.try_get("kid")?,
                    sealed_private_key: r.try_get("private_key")?,
                    public_jwk: r.try_get("public_jwk")?,
                    created_at: r.try_get("created_at")?,
                    signs_from: r.try_get("signs_from")?,
                    retired_at: r.try_get("retired_at")?,
                    publish_until: r.try_get("publish_until")?,
                })
            })
            .collect()
    }

    /// Retires every active key except `keep`: they stop signing at `retire_at` and stay in JWKS
    /// until `publish_until`, when the last token they signed has expired.
    pub async fn retire_signing_keys_except(&self, keep: &str, retire_at: i64, publish_until: i64) -> StoreResult<u64> {
        let done = sqlx::query("UPDATE signing_keys SET retired_at = $2, publish_until = $3 WHERE kid <> $1 AND retired_at IS NULL")
            .bind(keep)
            .bind(retire_at)
            .bind(publish_until)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}
