//! Grants: one per sign-in of a citizen to a partner. Authorization codes and refresh tokens
//! hang off a grant; revoking the grant revokes everything issued from it, which is how a
//! replayed code or a reused refresh token shuts down the whole family.

use sqlx::Row as _;

use super::{Db, StoreResult};

#[derive(Debug, Clone)]
pub struct GrantRecord {
    pub id: String,
    pub account_id: String,
    pub client_id: String,
    pub scope: String,
    pub vot: String,
    pub auth_time: i64,
}

#[derive(Debug, Clone)]
pub struct NewAuthorizationCode {
    pub code_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub nonce: String,
    pub code_challenge: Option<String>,
    pub expires_at: i64,
    /// The `jti` of the ID token this code's redemption will issue.
    pub id_token_jti: String,
}

/// What a consumed code carries to the token endpoint.
#[derive(Debug, Clone)]
pub struct RedeemedCode {
    pub grant: GrantRecord,
    /// The grant's account, read in the same query as the grant.
    pub account: super::accounts::AccountRecord,
    pub client_id: String,
    pub redirect_uri: String,
    pub nonce: String,
    pub code_challenge: Option<String>,
    /// The `jti` the ID token must carry (recorded with the code for single sign-on).
    pub id_token_jti: String,
}

#[derive(Debug)]
pub enum CodeRedemption {
    Redeemed(RedeemedCode),
    /// Already used: the grant it belonged to has now been revoked.
    Replayed,
    /// Unknown or expired.
    Invalid,
}

#[derive(Debug)]
pub enum RefreshRotation {
    Rotated { grant: GrantRecord, scope: String },
    /// A rotated-out token came back: the family has been revoked.
    Reused,
    Invalid,
}

const GRANT_COLUMNS: &str = "g.id, g.account_id, g.client_id, g.scope, g.vot, g.auth_time";

fn grant_from(row: &super::Row) -> StoreResult<GrantRecord> {
    Ok(GrantRecord {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        client_id: row.try_get("client_id")?,
        scope: row.try_get("scope")?,
        vot: row.try_get("vot")?,
        auth_time: row.try_get("auth_time")?,
    })
}

impl Db {
    /// Creates the grant and its authorization code together.
    pub async fn insert_grant_with_code(&self, grant: &GrantRecord, code: &NewAuthorizationCode, now: i64) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("INSERT INTO grants (id, account_id, client_id, scope, vot, auth_time, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&grant.id)
            .bind(&grant.account_id)
            .bind(&grant.client_id)
            .bind(&grant.scope)
            .bind(&grant.vot)
            .bind(grant.auth_time)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, grant_id, client_id, redirect_uri, nonce, code_challenge, expires_at, id_token_jti) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&code.code_hash)
        .bind(&grant.id)
        .bind(&code.client_id)
        .bind(&code.redirect_uri)
        .bind(&code.nonce)
        .bind(&code.code_challenge)
        .bind(code.expires_at)
        .bind(&code.id_token_jti)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Consumes a code in one atomic statement, recording when the ID token it issues expires
    /// (`id_token_expires_at`, unix ms); a second use revokes the grant.
    pub async fn redeem_code(&self, code_hash: &str, now: i64, id_token_expires_at: i64) -> StoreResult<CodeRedemption> {
        let row = sqlx::query(
            "UPDATE authorization_codes SET consumed_at = $2, id_token_expires_at = $3 \
             WHERE code_hash = $1 AND consumed_at IS NULL AND expires_at > $2 \
             RETURNING grant_id, client_id, redirect_uri, nonce, code_challenge, id_token_jti",
        )
        .bind(code_hash)
        .bind(now)
        .bind(id_token_expires_at)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            let used = sqlx::query("SELECT grant_id FROM authorization_codes WHERE code_hash = $1 AND consumed_at IS NOT NULL")
                .bind(code_hash)
                .fetch_optional(self.pool())
                .await?;
            return Ok(match used {
                Some(r) => {
                    let grant_id: String = r.try_get(0)?;
                    self.revoke_grant(&grant_id, now).await?;
                    CodeRedemption::Replayed
                }
                None => CodeRedemption::Invalid,
            });
        };
        let grant_id: String = row.try_get("grant_id")?;
        let Some((grant, account)) = self.active_grant_with_account(&grant_id).await? else { return Ok(CodeRedemption::Invalid) };
        Ok(CodeRedemption::Redeemed(RedeemedCode {
            grant,
            account,
            client_id: row.try_get("client_id")?,
            redirect_uri: row.try_get("redirect_uri")?,
            nonce: row.try_get("nonce")?,
            code_challenge: row.try_get("code_challenge")?,
            id_token_jti: row.try_get("id_token_jti")?,
        }))
    }

    pub async fn active_grant(&self, grant_id: &str) -> StoreResult<Option<GrantRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {GRANT_COLUMNS} FROM grants g WHERE g.id = $1 AND g.revoked_at IS NULL")))
            .bind(grant_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(grant_from).transpose()
    }

    pub async fn revoke_grant(&self, grant_id: &str, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(grant_id)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn insert_refresh_token(&self, token_hash: &str, grant_id: &str, scope: &str, now: i64, expires_at: i64) -> StoreResult<()> {
        sqlx::query("INSERT INTO refresh_tokens (token_hash, grant_id, scope, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(token_hash)
            .bind(grant_id)
            .bind(scope)
            .bind(now)
            .bind(expires_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Marks a refresh token used (atomically) and returns its live grant; a token that was
    /// already used revokes its whole family (RFC 9700 section 4.14.2).
    pub async fn rotate_refresh_token(&self, token_hash: &str, now: i64) -> StoreResult<RefreshRotation> {
        let row = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
             RETURNING grant_id, scope",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            let used = sqlx::query("SELECT grant_id FROM refresh_tokens WHERE token_hash = $1 AND used_at IS NOT NULL")
                .bind(token_hash)
                .fetch_optional(self.pool())
                .await?;
            return Ok(match used {
                Some(r) => {
                    let grant_id: String = r.try_get(0)?;
                    self.revoke_grant(&grant_id, now).await?;
                    RefreshRotation::Reused
                }
                None => RefreshRotation::Invalid,
            });
        };
        let grant_id: String = row.try_get("grant_id")?;
        let scope: String = row.try_get("scope")?;
        Ok(match self.active_grant(&grant_id).await? {
            Some(grant) => RefreshRotation::Rotated { grant, scope },
            None => RefreshRotation::Invalid,
        })
    }

    /// Records a client assertion's `jti`; false when it was seen before (a replay).
    pub async fn record_assertion_jti(&self, client_id: &str, jti: &str, expires_at: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO client_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT (client_id, jti) DO NOTHING",
        )
        .bind(client_id)
        .bind(jti)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
