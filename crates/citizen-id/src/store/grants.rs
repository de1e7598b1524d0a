//! Grants: one per sign-in of a citizen to a partner. Authorization codes and refresh tokens
//! hang off a grant; revoking the grant revokes everything issued from it, which is how a
//! replayed code or a reused refresh token shuts down the whole family.

use sqlx::Row as _;

use super::accounts::{SUBJECT_COLUMNS, Subject, subject_from_row, token_subject_from_row};
use super::group_commit::{Redemption, Rotation};
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
    /// The grant's citizen, read in the same query as the grant: only the fields tokens carry
    /// (`accounts::TOKEN_SUBJECT_COLUMNS`); the others are empty.
    pub subject: Subject,
    pub client_id: String,
    pub redirect_uri: String,
    pub nonce: String,
    pub code_challenge: Option<String>,
    /// The `jti` the ID token must carry (recorded with the code for single sign-on).
    pub id_token_jti: String,
}

/// A client assertion's `jti` to record (RFC 7523 3 item 7), with how long the row must live
/// (unix ms).
#[derive(Debug, Clone)]
pub struct AssertionUse {
    pub client_id: String,
    pub jti: String,
    pub expires_at: i64,
}

/// A refresh token to store as a code is redeemed: its hash and expiry (unix ms).
#[derive(Debug, Clone, Copy)]
pub struct NewRefreshToken<'a> {
    pub token_hash: &'a str,
    pub expires_at: i64,
}

#[derive(Debug)]
pub enum CodeRedemption {
    Redeemed(Box<RedeemedCode>),
    /// Already used: the grant it belonged to has now been revoked.
    Replayed,
    /// Unknown or expired.
    Invalid,
    /// The client assertion's `jti` was used before: the code was left as it was.
    AssertionReplayed,
}

#[derive(Debug)]
pub enum RefreshRotation {
    Rotated { grant: GrantRecord, subject: Box<Subject>, scope: String },
    /// A rotated-out token came back: the family has been revoked.
    Reused,
    Invalid,
    /// The client assertion's `jti` was used before: nothing was changed.
    AssertionReplayed,
}

/// Only the tests read a bare grant; the token endpoint and userinfo read it with its citizen.
#[cfg(test)]
const GRANT_COLUMNS: &str = "g.id, g.account_id, g.client_id, g.scope, g.vot, g.auth_time";

#[cfg(test)]
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

/// A live grant's columns (table alias `g`) as `live_grant_from` reads them.
pub(super) const LIVE_GRANT_COLUMNS: &str = "g.id AS live_grant_id, g.client_id AS grant_client_id, g.scope AS grant_scope, \
                                  g.vot AS grant_vot, g.auth_time AS grant_auth_time";

/// The grant and its citizen from a row with `LIVE_GRANT_COLUMNS` and the citizen's columns,
/// read by `subject` (`subject_from_row` or, after a redemption, `token_subject_from_row`).
fn live_grant_from(row: &super::Row, subject: fn(&super::Row) -> StoreResult<Subject>) -> StoreResult<(GrantRecord, Subject)> {
    let subject = subject(row)?;
    let grant = GrantRecord {
        id: row.try_get("live_grant_id")?,
        account_id: subject.id.clone(),
        client_id: row.try_get("grant_client_id")?,
        scope: row.try_get("grant_scope")?,
        vot: row.try_get("grant_vot")?,
        auth_time: row.try_get("grant_auth_time")?,
    };
    Ok((grant, subject))
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

    /// Consumes a code atomically and reads its live grant and citizen in the same round trip,
    /// recording when the ID token it issues expires (`id_token_expires_at`, unix ms) and, when
    /// given, storing the grant's first refresh token. A second use revokes the grant.
    ///
    /// One round trip instead of three (this is the token endpoint's hot path), in one
    /// transaction with the other redemptions waiting at the time (`store::group_commit`): on
    /// PostgreSQL one statement with data-modifying CTEs (`postgres_redeem_batch_sql`), on SQLite
    /// set-based statements sent together (`sqlite_redeem_batch_sql`). The refresh token is
    /// stored only with a live grant; should the caller then refuse the code (another client,
    /// a wrong PKCE verifier), it revokes the grant, which ends that token too.
    pub async fn redeem_code(
        &self,
        code_hash: &str,
        now: i64,
        id_token_expires_at: i64,
        assertion: &AssertionUse,
        first_refresh: Option<NewRefreshToken<'_>>,
    ) -> StoreResult<CodeRedemption> {
        let redemption = Redemption {
            code_hash: code_hash.to_owned(),
            now,
            id_token_expires_at,
            assertion: assertion.clone(),
            refresh: first_refresh.map(|r| (r.token_hash.to_owned(), r.expires_at)),
        };
        let rows = self.run_in_batch(&self.redemptions, redemption).await?;
        if !rows.iter().any(|row| row.try_get::<i64, _>("assertion_fresh").is_ok_and(|n| n == 1)) {
            return Ok(CodeRedemption::AssertionReplayed);
        }
        let redeemed = rows.iter().find(|row| row.try_get::<i64, _>("redeemed").is_ok_and(|n| n == 1));
        let Some(row) = redeemed else {
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
        // The grant was revoked (or its account deleted) while the code waited.
        if row.try_get::<Option<String>, _>("live_grant_id")?.is_none() {
            return Ok(CodeRedemption::Invalid);
        }
        let (grant, subject) = live_grant_from(row, token_subject_from_row)?;
        Ok(CodeRedemption::Redeemed(Box::new(RedeemedCode {
            grant,
            subject,
            client_id: row.try_get("client_id")?,
            redirect_uri: row.try_get("redirect_uri")?,
            nonce: row.try_get("nonce")?,
            code_challenge: row.try_get("code_challenge")?,
            id_token_jti: row.try_get("id_token_jti")?,
        })))
    }

    /// The live grant `grant_id` and its citizen as partners see them, in one round trip (the
    /// userinfo hot path; also the refresh grant's).
    pub async fn active_grant_with_subject(&self, grant_id: &str) -> StoreResult<Option<(GrantRecord, Subject)>> {
        // Built once: this is the query behind every userinfo request.
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT {LIVE_GRANT_COLUMNS}, {SUBJECT_COLUMNS} FROM grants g JOIN accounts a ON a.id = g.account_id \
                 WHERE g.id = $1 AND g.revoked_at IS NULL"
            )
        });
        let row = sqlx::query(sqlx::AssertSqlSafe(SQL.as_str())).bind(grant_id).fetch_optional(self.pool()).await?;
        row.as_ref().map(|r| live_grant_from(r, subject_from_row)).transpose()
    }

    #[cfg(test)]
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

    /// Stores a refresh token as it is (the token endpoint stores them with a redemption or a
    /// rotation; the tests use this to set up their cases).
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

    /// Rotates a refresh token (RFC 9700 4.14.2) in one transaction: records the client
    /// assertion's `jti`, spends the old token and stores `next` for the live grant, so a failure
    /// anywhere leaves all three as they were. (Rotation in separate steps could spend the old
    /// token and then fail to store the new one: the partner's retry with the old token would
    /// then count as a reuse and revoke the family, signing the citizen out.) A spent token
    /// coming back revokes the grant. One round trip, in one transaction with the other rotations
    /// waiting at the time (`store::group_commit`): one statement on PostgreSQL
    /// (`postgres_rotate_batch_sql`), one query of several statements on SQLite
    /// (`sqlite_rotate_batch_sql`).
    pub async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
        assertion: &AssertionUse,
        next: NewRefreshToken<'_>,
    ) -> StoreResult<RefreshRotation> {
        let rotation = Rotation {
            token_hash: token_hash.to_owned(),
            now,
            assertion: assertion.clone(),
            next_hash: next.token_hash.to_owned(),
            next_expires_at: next.expires_at,
        };
        let mut rows = self.run_in_batch(&self.rotations, rotation).await?;
        if rows.len() != 1 {
            return Err(super::StoreError::Corrupt(format!("refresh rotation answered {} rows", rows.len())));
        }
        let row = rows.remove(0);
        if row.try_get::<i64, _>("assertion_fresh")? != 1 {
            return Ok(RefreshRotation::AssertionReplayed);
        }
        if row.try_get::<i64, _>("spent")? != 1 {
            return self.spent_or_unknown_refresh_token(token_hash, now).await;
        }
        if row.try_get::<Option<String>, _>("live_grant_id")?.is_none() {
            return Ok(RefreshRotation::Invalid);
        }
        let scope: String = row.try_get("spent_scope")?;
        let (grant, subject) = live_grant_from(&row, subject_from_row)?;
        Ok(RefreshRotation::Rotated { grant, subject: Box::new(subject), scope })
    }

    /// The scope of the live grant behind `token_hash`, when that is an unspent, unexpired
    /// refresh token of `client_id`'s; read without spending it, so the refresh grant can refuse
    /// a wider scope before the rotation (a grant's scope never changes, so this cannot go stale
    /// before the rotation that follows). `None` otherwise: the rotation then answers the token.
    pub async fn refresh_token_grant_scope(&self, token_hash: &str, client_id: &str, now: i64) -> StoreResult<Option<String>> {
        let row = sqlx::query(
            "SELECT g.scope FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id \
             WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.expires_at > $3 AND g.revoked_at IS NULL AND g.client_id = $2",
        )
        .bind(token_hash)
        .bind(client_id)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| r.try_get(0)).transpose().map_err(Into::into)
    }

    /// A refresh token that could not be spent: reused (it was spent before; its grant is revoked
    /// now) or unknown, expired or revoked.
    async fn spent_or_unknown_refresh_token(&self, token_hash: &str, now: i64) -> StoreResult<RefreshRotation> {
        let used = sqlx::query("SELECT grant_id FROM refresh_tokens WHERE token_hash = $1 AND used_at IS NOT NULL")
            .bind(token_hash)
            .fetch_optional(self.pool())
            .await?;
        Ok(match used {
            Some(r) => {
                let grant_id: String = r.try_get(0)?;
                self.revoke_grant(&grant_id, now).await?;
                RefreshRotation::Reused
            }
            None => RefreshRotation::Invalid,
        })
    }
}
