//! Passkeys as stored, and WebAuthn ceremonies between their start and finish.
//!
//! Semantics the callers rely on:
//! - a ceremony is taken at most once: `take_ceremony` is one `DELETE ... RETURNING`, so of
//!   two finishes racing with the same id exactly one gets the state, and an expired row is
//!   deleted without being returned;
//! - `record_passkey_use` touches only a row that still exists for that account, so a passkey
//!   removed between a ceremony's start and its finish is refused at the finish;
//! - `remove_password` clears the password only while the account has a passkey, in one
//!   statement, so a citizen can never be left with no way to sign in.

use sqlx::Row as _;

use super::outbox::NewOutboxMessage;
use super::{Db, Row, StoreResult, flag};

/// A passkey row, as the account pages list it and sign-in checks it.
#[derive(Debug, Clone, PartialEq)]
pub struct PasskeyRecord {
    /// The credential id, base64url without padding.
    pub id: String,
    pub account_id: String,
    pub name: String,
    /// webauthn-rs's serialised `Passkey`.
    pub credential: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub sign_count: i64,
    pub backup_eligible: bool,
    pub backup_state: bool,
}

/// What the authenticator told us at one use of a passkey.
#[derive(Debug, Clone)]
pub struct PasskeyUse<'a> {
    pub credential: &'a str,
    pub sign_count: i64,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub at: i64,
}

/// A ceremony row as taken (already deleted).
#[derive(Debug, Clone)]
pub struct CeremonyRecord {
    pub kind: String,
    pub account_id: Option<String>,
    pub state: String,
}

const COLUMNS: &str = "id, account_id, name, credential, created_at, last_used_at, sign_count, backup_eligible, backup_state";

fn from_row(row: &Row) -> StoreResult<PasskeyRecord> {
    Ok(PasskeyRecord {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        name: row.try_get("name")?,
        credential: row.try_get("credential")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        sign_count: row.try_get("sign_count")?,
        backup_eligible: row.try_get::<i64, _>("backup_eligible")? != 0,
        backup_state: row.try_get::<i64, _>("backup_state")? != 0,
    })
}

impl Db {
    /// Stores a new passkey; `StoreError::Conflict` when the credential id is already
    /// registered (to this or any other account).
    pub async fn insert_passkey(&self, p: &PasskeyRecord, notice: Option<&NewOutboxMessage>) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO passkeys (id, account_id, name, credential, created_at, last_used_at, sign_count, backup_eligible, backup_state) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&p.id)
        .bind(&p.account_id)
        .bind(&p.name)
        .bind(&p.credential)
        .bind(p.created_at)
        .bind(p.last_used_at)
        .bind(p.sign_count)
        .bind(flag(p.backup_eligible))
        .bind(flag(p.backup_state))
        .execute(&mut *tx)
        .await?;
        super::outbox::enqueue_notice(&mut tx, notice, p.created_at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The passkey with credential id `id`, whoever owns it.
    pub async fn passkey(&self, id: &str) -> StoreResult<Option<PasskeyRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM passkeys WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// An account's passkeys, oldest first.
    pub async fn passkeys_for_account(&self, account_id: &str) -> StoreResult<Vec<PasskeyRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM passkeys WHERE account_id = $1 ORDER BY created_at, id")))
            .bind(account_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Records a successful use: the updated credential, its counter and backup flags.
    /// Returns false when the passkey no longer exists for that account (it was removed).
    pub async fn record_passkey_use(&self, id: &str, account_id: &str, u: &PasskeyUse<'_>) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE passkeys SET credential = $3, sign_count = $4, backup_eligible = $5, backup_state = $6, last_used_at = $7 \
             WHERE id = $1 AND account_id = $2",
        )
        .bind(id)
        .bind(account_id)
        .bind(u.credential)
        .bind(u.sign_count)
        .bind(flag(u.backup_eligible))
        .bind(flag(u.backup_state))
        .bind(u.at)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes one of the account's passkeys and returns its name (for the notice); `None` when it
    /// had no such passkey. An account without a password keeps at least one passkey: its last one
    /// cannot be removed.
    pub async fn delete_passkey(
        &self,
        account_id: &str,
        id: &str,
        now: i64,
        notice: impl FnOnce(&str) -> NewOutboxMessage,
    ) -> StoreResult<Option<String>> {
        let mut tx = self.pool().begin().await?;
        let name: Option<String> = sqlx::query_scalar(
            "DELETE FROM passkeys WHERE id = $1 AND account_id = $2 AND ( \
               EXISTS (SELECT 1 FROM accounts WHERE accounts.id = $2 AND accounts.password_hash IS NOT NULL) \
               OR (SELECT COUNT(*) FROM passkeys others WHERE others.account_id = $2) > 1) \
             RETURNING name",
        )
        .bind(id)
        .bind(account_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(name) = &name {
            super::outbox::enqueue_notice(&mut tx, Some(&notice(name)), now).await?;
        }
        tx.commit().await?;
        Ok(name)
    }

    /// Clears the account's password, only if it has at least one passkey. True when cleared.
    pub async fn remove_password(&self, account_id: &str, now: i64, notice: &NewOutboxMessage) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE accounts SET password_hash = NULL, failed_logins = 0, updated_at = $2 \
             WHERE id = $1 AND password_hash IS NOT NULL AND EXISTS (SELECT 1 FROM passkeys WHERE passkeys.account_id = $1)",
        )
        .bind(account_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let cleared = done.rows_affected() == 1;
        if cleared {
            super::outbox::enqueue_notice(&mut tx, Some(notice), now).await?;
        }
        tx.commit().await?;
        Ok(cleared)
    }

    /// Stores a new passkey made during account recovery and ends every session and
    /// remembered browser of the account, in one transaction (as a password reset does:
    /// recovery must evict whoever held the lost device's sessions).
    pub async fn insert_recovery_passkey(&self, p: &PasskeyRecord, notice: Option<&NewOutboxMessage>) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO passkeys (id, account_id, name, credential, created_at, last_used_at, sign_count, backup_eligible, backup_state) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&p.id)
        .bind(&p.account_id)
        .bind(&p.name)
        .bind(&p.credential)
        .bind(p.created_at)
        .bind(p.last_used_at)
        .bind(p.sign_count)
        .bind(flag(p.backup_eligible))
        .bind(flag(p.backup_state))
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE accounts SET failed_logins = 0, locked_until = NULL, updated_at = $2 WHERE id = $1")
            .bind(&p.account_id)
            .bind(p.created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE account_id = $1").bind(&p.account_id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM remembered_devices WHERE account_id = $1").bind(&p.account_id).execute(&mut *tx).await?;
        super::outbox::enqueue_notice(&mut tx, notice, p.created_at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores a ceremony's state under the SHA-256 of its id.
    pub async fn insert_ceremony(&self, id_hash: &str, kind: &str, account_id: Option<&str>, state: &str, expires_at: i64) -> StoreResult<()> {
        sqlx::query("INSERT INTO webauthn_ceremonies (id_hash, kind, account_id, state, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id_hash)
            .bind(kind)
            .bind(account_id)
            .bind(state)
            .bind(expires_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Takes (deletes and returns) a ceremony: at most once, and never after it expired.
    pub async fn take_ceremony(&self, id_hash: &str, now: i64) -> StoreResult<Option<CeremonyRecord>> {
        let row = sqlx::query("DELETE FROM webauthn_ceremonies WHERE id_hash = $1 RETURNING kind, account_id, state, expires_at")
            .bind(id_hash)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let expires_at: i64 = row.try_get("expires_at")?;
        if expires_at <= now {
            return Ok(None);
        }
        Ok(Some(CeremonyRecord { kind: row.try_get("kind")?, account_id: row.try_get("account_id")?, state: row.try_get("state")? }))
    }
}
