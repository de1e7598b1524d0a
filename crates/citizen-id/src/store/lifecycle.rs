//! Account management writes (F8, F13): contact changes, connected services, signing out
//! everywhere, the subject-access export, and erasure.

use serde_json::{Value, json};
use sqlx::Row as _;

use super::outbox::NewOutboxMessage;
use super::{Db, StoreResult};

/// A partner the citizen has used, and what it receives.
#[derive(Debug, Clone)]
pub struct ConnectedService {
    pub client_id: String,
    pub name: String,
    pub last_used: i64,
    pub scope: Option<String>,
}

/// Tables whose rows belong to one account, by the column naming it. Erasure deletes from
/// each; a test checks that no table outside this list and `audit_log` mentions a deleted
/// citizen, so a new table cannot be forgotten silently.
pub const ACCOUNT_TABLES: &[(&str, &str)] = &[
    ("sessions", "account_id"),
    ("remembered_devices", "account_id"),
    ("one_time_codes", "subject"),
    ("consents", "account_id"),
    ("client_user_metadata", "account_id"),
    ("grants", "account_id"),
    ("passkeys", "account_id"),
    ("webauthn_ceremonies", "account_id"),
];

impl Db {
    /// Updates the email; `StoreError::Conflict` when another account has it.
    pub async fn set_email(&self, id: &str, email: &str, now: i64, notice: Option<&NewOutboxMessage>) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE accounts SET email = $2, updated_at = $3 WHERE id = $1").bind(id).bind(email).bind(now).execute(&mut *tx).await?;
        super::outbox::enqueue_notice(&mut tx, notice, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Updates the verified mobile. A new number has not been matched with PDS: the sticky
    /// `phone_number_pds_matched` describes the number it was set for, so it stays as it was
    /// only when `pds_matched` says the new number is the one on PDS.
    pub async fn set_mobile(&self, id: &str, mobile: &str, pds_matched: bool, now: i64, notice: Option<&NewOutboxMessage>) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE accounts SET mobile = $2, phone_pds_matched = CASE WHEN $3 = 1 THEN 1 ELSE phone_pds_matched END, updated_at = $4 WHERE id = $1")
            .bind(id)
            .bind(mobile)
            .bind(i64::from(pds_matched))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        super::outbox::enqueue_notice(&mut tx, notice, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_landline(&self, id: &str, landline: Option<&str>, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE accounts SET landline = $2, updated_at = $3 WHERE id = $1").bind(id).bind(landline).bind(now).execute(self.pool()).await?;
        Ok(())
    }

    pub async fn set_pds_version(&self, id: &str, version: &str) -> StoreResult<()> {
        sqlx::query("UPDATE accounts SET pds_version = $2 WHERE id = $1").bind(id).bind(version).execute(self.pool()).await?;
        Ok(())
    }

    /// Partners the citizen has signed in to, newest first, with the details they receive.
    pub async fn connected_services(&self, account_id: &str) -> StoreResult<Vec<ConnectedService>> {
        let rows = sqlx::query(
            "SELECT g.client_id, p.name, MAX(g.created_at) AS last_used, c.scope FROM grants g \
             JOIN partners p ON p.client_id = g.client_id \
             LEFT JOIN consents c ON c.account_id = g.account_id AND c.client_id = g.client_id \
             WHERE g.account_id = $1 GROUP BY g.client_id, p.name, c.scope ORDER BY last_used DESC",
        )
        .bind(account_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConnectedService {
                    client_id: r.try_get("client_id")?,
                    name: r.try_get("name")?,
                    last_used: r.try_get("last_used")?,
                    scope: r.try_get("scope")?,
                })
            })
            .collect()
    }

    /// Withdraws consent: the next sign-in asks again, and every grant (so every refresh
    /// token and access token) issued to that partner for this citizen is revoked.
    pub async fn withdraw_consent(&self, account_id: &str, client_id: &str, now: i64) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM consents WHERE account_id = $1 AND client_id = $2").bind(account_id).bind(client_id).execute(&mut *tx).await?;
        sqlx::query("UPDATE grants SET revoked_at = $3 WHERE account_id = $1 AND client_id = $2 AND revoked_at IS NULL")
            .bind(account_id)
            .bind(client_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends every session and remembered browser of the account.
    pub async fn sign_out_everywhere(&self, account_id: &str) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM sessions WHERE account_id = $1").bind(account_id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM remembered_devices WHERE account_id = $1").bind(account_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Everything held about the citizen that is theirs to see (GDPR subject access), as JSON.
    pub async fn export_account(&self, account_id: &str) -> StoreResult<Value> {
        let Some(a) = self.account(account_id).await? else { return Ok(Value::Null) };
        let services = self.connected_services(account_id).await?;
        let events = self.audit_events_for(account_id).await?;
        let grants = sqlx::query("SELECT client_id, scope, vot, created_at, revoked_at FROM grants WHERE account_id = $1 ORDER BY created_at")
            .bind(account_id)
            .fetch_all(self.pool())
            .await?;
        let grants: Vec<Value> = grants
            .iter()
            .map(|r| {
                Ok(json!({
                    "partner": r.try_get::<String, _>("client_id")?,
                    "details_shared": r.try_get::<String, _>("scope")?,
                    "level_and_sign_in": r.try_get::<String, _>("vot")?,
                    "at_unix_ms": r.try_get::<i64, _>("created_at")?,
                    "revoked_at_unix_ms": r.try_get::<Option<i64>, _>("revoked_at")?,
                }))
            })
            .collect::<StoreResult<_>>()?;
        Ok(json!({
            "account": {
                "id": a.id, "email": a.email, "mobile": a.mobile, "landline": a.landline,
                "identity_proofing_level": a.proofing_level, "nhs_number": a.nhs_number,
                "given_name": a.given_name, "middle_names": a.middle_names, "family_name": a.family_name,
                "birthdate": a.birthdate, "postcode": a.postcode, "gp_ods_code": a.gp_ods_code,
                "phone_number_pds_matched": a.phone_pds_matched,
                "has_password": a.password_hash.is_some(),
                "has_gp_online_credentials": a.gp_credentials_sealed.is_some(),
                "created_at_unix_ms": a.created_at, "last_sign_in_at_unix_ms": a.last_sign_in_at,
            },
            "connected_services": services.iter().map(|s| json!({ "partner": s.name, "client_id": s.client_id, "last_used_unix_ms": s.last_used, "details_shared": s.scope })).collect::<Vec<_>>(),
            "sign_ins": grants,
            "security_events": events.iter().map(|(e, d)| json!({ "event": e, "detail": serde_json::from_str::<Value>(d).unwrap_or(Value::Null) })).collect::<Vec<_>>(),
        }))
    }

    /// Erasure (F13): deletes every row about the account, in one transaction, and clears
    /// its identity from the audit trail. The `confirmation` is queued in the same
    /// transaction: the email goes out if and only if the account is gone. The caller records
    /// the one audit event the law needs.
    pub async fn delete_account(&self, account_id: &str, confirmation: &super::outbox::NewOutboxMessage, now: i64) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        super::outbox::enqueue(&mut tx, confirmation, now).await?;
        for sql in [
            "DELETE FROM refresh_tokens WHERE grant_id IN (SELECT id FROM grants WHERE account_id = $1)",
            "DELETE FROM authorization_codes WHERE grant_id IN (SELECT id FROM grants WHERE account_id = $1)",
        ] {
            sqlx::query(sql).bind(account_id).execute(&mut *tx).await?;
        }
        for (table, column) in ACCOUNT_TABLES {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE {column} = $1"))).bind(account_id).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM rate_limits WHERE bucket = $1").bind(format!("pol:{account_id}")).execute(&mut *tx).await?;
        sqlx::query("UPDATE audit_log SET account_id = NULL, ip = NULL WHERE account_id = $1").bind(account_id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM accounts WHERE id = $1").bind(account_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}
