//! Citizen accounts as stored. An account is written whole, in one transaction, only once
//! registration has verified both the email and the mobile: never half-created.

use sqlx::Row as _;

use super::outbox::NewOutboxMessage;
use super::{Db, Row, StoreResult};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountRecord {
    pub id: String,
    pub email: String,
    pub password_hash: Option<String>,
    pub mobile: Option<String>,
    pub proofing_level: String,
    pub nhs_number: Option<String>,
    pub family_name: Option<String>,
    pub given_name: Option<String>,
    pub birthdate: Option<String>,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_sign_in_at: Option<i64>,
    pub middle_names: Option<String>,
    pub postcode: Option<String>,
    pub gp_ods_code: Option<String>,
    pub landline: Option<String>,
    /// Sticky: once the mobile matched PDS it stays true (Federation spec v1.12).
    pub phone_pds_matched: bool,
    /// GP online credentials, sealed under the key-encryption key.
    pub gp_credentials_sealed: Option<String>,
    pub pds_version: Option<String>,
}

/// The account as partners see it: what tokens and userinfo release (`oidc::claims`). Read with
/// its grant on every userinfo request, so only these columns are fetched (about half of the row;
/// the conversion of each fetched column is a real part of that cost); a code's redemption reads
/// fewer still (`TOKEN_SUBJECT_COLUMNS`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subject {
    pub id: String,
    pub email: String,
    pub mobile: Option<String>,
    pub landline: Option<String>,
    pub proofing_level: String,
    pub nhs_number: Option<String>,
    pub family_name: Option<String>,
    pub given_name: Option<String>,
    pub birthdate: Option<String>,
    pub gp_ods_code: Option<String>,
    pub phone_pds_matched: bool,
    /// GP online credentials, sealed under the key-encryption key.
    pub gp_credentials_sealed: Option<String>,
}

pub(super) const SUBJECT_COLUMNS: &str = "a.id, a.email, a.mobile, a.landline, a.proofing_level, a.nhs_number, a.family_name, a.given_name, \
                               a.birthdate, a.gp_ods_code, a.phone_pds_matched, a.gp_credentials";

/// What a code's redemption reads of the citizen: the subject and the fields of the ID token's
/// user claims (Table 16), five of the twelve. Every column read costs a copy on SQLite's thread
/// and a conversion on the async side, and the redemption is the token endpoint's hot path.
pub(super) const TOKEN_SUBJECT_COLUMNS: &str = "a.id, a.proofing_level, a.nhs_number, a.family_name, a.birthdate";

/// A `Subject` from a row with `TOKEN_SUBJECT_COLUMNS`: the fields tokens carry, the rest empty.
/// (`oidc::token` tests that both tokens' claims come out the same as from a full `Subject`.)
pub(super) fn token_subject_from_row(row: &Row) -> StoreResult<Subject> {
    Ok(Subject {
        id: row.try_get("id")?,
        proofing_level: row.try_get("proofing_level")?,
        nhs_number: row.try_get("nhs_number")?,
        family_name: row.try_get("family_name")?,
        birthdate: row.try_get("birthdate")?,
        ..Subject::default()
    })
}

/// Only the token fields of `subject`, as a redemption reads them (for that test).
#[cfg(test)]
pub fn token_fields_only(subject: &Subject) -> Subject {
    Subject {
        id: subject.id.clone(),
        proofing_level: subject.proofing_level.clone(),
        nhs_number: subject.nhs_number.clone(),
        family_name: subject.family_name.clone(),
        birthdate: subject.birthdate.clone(),
        ..Subject::default()
    }
}

pub(super) fn subject_from_row(row: &Row) -> StoreResult<Subject> {
    Ok(Subject {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        mobile: row.try_get("mobile")?,
        landline: row.try_get("landline")?,
        proofing_level: row.try_get("proofing_level")?,
        nhs_number: row.try_get("nhs_number")?,
        family_name: row.try_get("family_name")?,
        given_name: row.try_get("given_name")?,
        birthdate: row.try_get("birthdate")?,
        gp_ods_code: row.try_get("gp_ods_code")?,
        phone_pds_matched: row.try_get::<i64, _>("phone_pds_matched")? != 0,
        gp_credentials_sealed: row.try_get("gp_credentials")?,
    })
}

/// Demographics confirmed by a PDS match, written with the level they earn.
#[derive(Debug, Clone)]
pub struct ProofedIdentity {
    pub nhs_number: String,
    pub given_name: String,
    pub middle_names: Option<String>,
    pub family_name: String,
    pub birthdate: String,
    pub postcode: Option<String>,
    pub gp_ods_code: Option<String>,
    pub pds_version: Option<String>,
}

/// What registration supplies; the rest starts empty.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: String,
    pub email: String,
    pub password_hash: Option<String>,
    pub mobile: String,
    pub created_at: i64,
}

const COLUMNS: &str = "id, email, password_hash, mobile, proofing_level, nhs_number, family_name, given_name, \
                       birthdate, failed_logins, locked_until, created_at, updated_at, last_sign_in_at, middle_names, \
                       postcode, gp_ods_code, landline, phone_pds_matched, gp_credentials, pds_version";

fn from_row(row: &Row) -> StoreResult<AccountRecord> {
    Ok(AccountRecord {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        mobile: row.try_get("mobile")?,
        proofing_level: row.try_get("proofing_level")?,
        nhs_number: row.try_get("nhs_number")?,
        family_name: row.try_get("family_name")?,
        given_name: row.try_get("given_name")?,
        birthdate: row.try_get("birthdate")?,
        failed_logins: row.try_get("failed_logins")?,
        locked_until: row.try_get("locked_until")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_sign_in_at: row.try_get("last_sign_in_at")?,
        middle_names: row.try_get("middle_names")?,
        postcode: row.try_get("postcode")?,
        gp_ods_code: row.try_get("gp_ods_code")?,
        landline: row.try_get("landline")?,
        phone_pds_matched: row.try_get::<i64, _>("phone_pds_matched")? != 0,
        gp_credentials_sealed: row.try_get("gp_credentials")?,
        pds_version: row.try_get("pds_version")?,
    })
}

impl Db {
    /// Inserts the account; `StoreError::Conflict` when the email is already registered.
    pub async fn insert_account(&self, a: &NewAccount) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO accounts (id, email, password_hash, mobile, proofing_level, failed_logins, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'P0', 0, $5, $5)",
        )
        .bind(&a.id)
        .bind(&a.email)
        .bind(&a.password_hash)
        .bind(&a.mobile)
        .bind(a.created_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn account(&self, id: &str) -> StoreResult<Option<AccountRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM accounts WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn account_by_email(&self, email: &str) -> StoreResult<Option<AccountRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM accounts WHERE email = $1")))
            .bind(email)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn accounts_with_mobile(&self, mobile: &str) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM accounts WHERE mobile = $1").bind(mobile).fetch_one(self.pool()).await?;
        Ok(row.try_get(0)?)
    }

    /// Counts a wrong password; from `max` failures on, the account is locked until `lock_until`.
    /// Returns the new failure count.
    pub async fn record_failed_login(&self, id: &str, max: i64, lock_until: i64, now: i64) -> StoreResult<i64> {
        let row = sqlx::query(
            "UPDATE accounts SET failed_logins = failed_logins + 1, updated_at = $3, \
             locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $4 ELSE locked_until END \
             WHERE id = $1 RETURNING failed_logins",
        )
        .bind(id)
        .bind(max)
        .bind(now)
        .bind(lock_until)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?.unwrap_or(0))
    }

    /// Locks an account outright (too many wrong codes).
    pub async fn lock_account(&self, id: &str, until: i64, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE accounts SET locked_until = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(until)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn record_successful_sign_in(&self, id: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE accounts SET failed_logins = 0, locked_until = NULL, last_sign_in_at = $2, updated_at = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Sets a new password hash, clears lockout, and ends every other session and remembered
    /// browser of the account (a password reset must evict whoever knew the old one).
    pub async fn set_password(&self, id: &str, password_hash: &str, now: i64, notice: Option<&NewOutboxMessage>) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE accounts SET password_hash = $2, failed_logins = 0, locked_until = NULL, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(password_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE account_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM remembered_devices WHERE account_id = $1").bind(id).execute(&mut *tx).await?;
        super::outbox::enqueue_notice(&mut tx, notice, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a PDS match and the level it earns. The NHS number is UNIQUE, so of two
    /// concurrent uplifts with one NHS number exactly one succeeds; the other gets
    /// `StoreError::Conflict` (the duplicate-account hard stop, F7).
    pub async fn record_proofed_identity(&self, id: &str, p: &ProofedIdentity, level: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE accounts SET nhs_number = $2, given_name = $3, middle_names = $4, family_name = $5, birthdate = $6, \
             postcode = $7, gp_ods_code = $8, pds_version = $9, proofing_level = $10, updated_at = $11 WHERE id = $1",
        )
        .bind(id)
        .bind(&p.nhs_number)
        .bind(&p.given_name)
        .bind(&p.middle_names)
        .bind(&p.family_name)
        .bind(&p.birthdate)
        .bind(&p.postcode)
        .bind(&p.gp_ods_code)
        .bind(&p.pds_version)
        .bind(level)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn account_by_nhs_number(&self, nhs_number: &str) -> StoreResult<Option<AccountRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM accounts WHERE nhs_number = $1")))
            .bind(nhs_number)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Raises the proofing level (never lowers it here).
    pub async fn set_proofing_level(&self, id: &str, level: &str, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE accounts SET proofing_level = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(level)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Sets `phone_number_pds_matched`; there is deliberately no way to clear it.
    pub async fn set_phone_pds_matched(&self, id: &str, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE accounts SET phone_pds_matched = 1, updated_at = $2 WHERE id = $1").bind(id).bind(now).execute(self.pool()).await?;
        Ok(())
    }

    /// Stores sealed GP online credentials and the P9 they earn, together.
    pub async fn set_gp_credentials(&self, id: &str, sealed: &str, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE accounts SET gp_credentials = $2, proofing_level = 'P9', updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(sealed)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
