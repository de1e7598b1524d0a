//! The append-only, hash-chained audit log of security events. Each row's hash covers the
//! previous row's hash, so editing or deleting a row breaks every hash after it.
//! `detail` never holds personal data: ids and event facts only.
//!
//! The chain covers `account_ref` (SHA-256 of the random account id) and `ip_ref` (an HMAC of
//! the IP address under the server pepper), not the raw values, so erasing an account can
//! clear `account_id` and `ip` from its rows without breaking the chain (F13).

use sqlx::Row as _;

use super::{Backend, Db, StoreResult};

#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    pub event: &'a str,
    pub account_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    /// HMAC of `ip` under the server pepper (see `crypto::hmac_hex`).
    pub ip_ref: Option<String>,
    pub detail: serde_json::Value,
}

pub fn account_ref(account_id: &str) -> String {
    crate::crypto::sha256_hex(account_id)
}

fn chain_hash(prev: &str, at: i64, event: &str, account_ref: &str, client_id: &str, ip_ref: &str, detail: &str) -> String {
    crate::crypto::sha256_hex(&format!("{prev}|{at}|{event}|{account_ref}|{client_id}|{ip_ref}|{detail}"))
}

impl Db {
    pub async fn audit(&self, e: AuditEvent<'_>, now: i64) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        match self.backend() {
            // Serialises writers across instances so the chain never forks.
            Backend::Postgres => {
                sqlx::query("SELECT pg_advisory_xact_lock(7346002)").execute(&mut *tx).await?;
            }
            // SQLite has one writer; take the write lock before reading the chain head.
            Backend::Sqlite => {
                sqlx::query("UPDATE audit_log SET seq = seq WHERE seq = -1").execute(&mut *tx).await?;
            }
        }
        let prev = sqlx::query("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *tx).await?;
        let prev: String = match prev {
            Some(r) => r.try_get(0)?,
            None => "genesis".to_string(),
        };
        let detail = e.detail.to_string();
        let acct_ref = e.account_id.map(account_ref).unwrap_or_default();
        let ip_ref = e.ip_ref.clone().unwrap_or_default();
        let hash = chain_hash(&prev, now, e.event, &acct_ref, e.client_id.unwrap_or(""), &ip_ref, &detail);
        sqlx::query(
            "INSERT INTO audit_log (at, event, account_id, client_id, ip, detail, prev_hash, hash, account_ref, ip_ref) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(now)
        .bind(e.event)
        .bind(e.account_id)
        .bind(e.client_id)
        .bind(e.ip)
        .bind(&detail)
        .bind(&prev)
        .bind(&hash)
        .bind(&acct_ref)
        .bind(&ip_ref)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Re-computes the chain; returns the sequence number of the first broken row, if any.
    pub async fn verify_audit_chain(&self) -> StoreResult<Option<i64>> {
        let rows = sqlx::query("SELECT seq, at, event, account_ref, client_id, ip_ref, detail, prev_hash, hash FROM audit_log ORDER BY seq")
            .fetch_all(self.pool())
            .await?;
        let mut prev = "genesis".to_string();
        for r in rows {
            let seq: i64 = r.try_get("seq")?;
            let text = |c: &str| -> StoreResult<String> { Ok(r.try_get::<Option<String>, _>(c)?.unwrap_or_default()) };
            let expected = chain_hash(&prev, r.try_get("at")?, &text("event")?, &text("account_ref")?, &text("client_id")?, &text("ip_ref")?, &text("detail")?);
            let hash = text("hash")?;
            if text("prev_hash")? != prev || expected != hash {
                return Ok(Some(seq));
            }
            prev = hash;
        }
        Ok(None)
    }

    /// Events recorded for an account, newest first (support staff and tests).
    pub async fn audit_events_for(&self, account_id: &str) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT event, detail FROM audit_log WHERE account_id = $1 ORDER BY seq DESC")
            .bind(account_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok((r.try_get("event")?, r.try_get("detail")?))).collect()
    }
}
