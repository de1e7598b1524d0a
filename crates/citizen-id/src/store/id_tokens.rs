//! Issued ID tokens and used `asserted_login_identity` ids: what single sign-on between partners
//! (Federation spec Table 1, `asserted_login_identity`) needs to look up.
//!
//! Partner 1 hands partner 2 a JWT whose `code` is the `jti` of an ID token we issued to
//! partner 1. That jti is recorded on the authorization code whose redemption issued the token
//! (with the token's expiry), which leads to the token's citizen, grant and sign-in again. Every
//! assertion's (`iss`, `jti`) is recorded once in `asserted_identity_jtis`, so a second use is
//! seen as a replay. Times are unix ms, except `auth_time`: unix seconds, as in `grants`.

use sqlx::Row as _;

use super::{Db, StoreResult};

/// An ID token as recorded with the code that issued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenRecord {
    pub jti: String,
    pub grant_id: String,
    pub account_id: String,
    /// The partner the ID token was issued to (its `aud`).
    pub client_id: String,
    /// Unix seconds of the sign-in behind the token (its `auth_time` claim).
    pub auth_time: i64,
    /// The vector of trust achieved (its `vot` claim), e.g. "P9.Cp.Cd".
    pub vot: String,
    /// Unix ms; the token's `exp`.
    pub expires_at: i64,
}

impl Db {
    /// The ID token `jti`, only while it is genuine and usable: not expired at `now`, and its
    /// grant not revoked (a replayed code, a reused refresh token or a withdrawn consent ends
    /// it). `None` otherwise, whichever the reason.
    pub async fn live_id_token(&self, jti: &str, now: i64) -> StoreResult<Option<IdTokenRecord>> {
        let row = sqlx::query(
            "SELECT c.id_token_jti AS jti, c.grant_id, g.account_id, g.client_id, g.auth_time, g.vot, \
             c.id_token_expires_at AS expires_at \
             FROM authorization_codes c JOIN grants g ON g.id = c.grant_id \
             WHERE c.id_token_jti = $1 AND c.id_token_expires_at > $2 AND g.revoked_at IS NULL",
        )
        .bind(jti)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(IdTokenRecord {
            jti: r.try_get("jti")?,
            grant_id: r.try_get("grant_id")?,
            account_id: r.try_get("account_id")?,
            client_id: r.try_get("client_id")?,
            auth_time: r.try_get("auth_time")?,
            vot: r.try_get("vot")?,
            expires_at: r.try_get("expires_at")?,
        }))
    }

    /// Records an `asserted_login_identity` (`iss`, `jti`) until `expires_at`; false when it was
    /// seen before (a replay). The row must outlive every moment the assertion is accepted.
    pub async fn record_asserted_identity_jti(&self, issuer: &str, jti: &str, expires_at: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO asserted_identity_jtis (issuer, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT (issuer, jti) DO NOTHING",
        )
        .bind(issuer)
        .bind(jti)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// True while the citizen has a Citizen ID browser session anywhere that has neither timed
    /// out nor been signed out (signing out replaces the session with an anonymous one).
    pub async fn account_has_live_session(&self, account_id: &str, now: i64) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 FROM sessions WHERE account_id = $1 AND expires_at > $2 AND idle_expires_at > $2 LIMIT 1")
            .bind(account_id)
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }
}
