//! The append-only, hash-chained audit log of security events. Each row's hash covers the
//! previous row's hash, so editing or deleting a row breaks every hash after it.
//! `detail` never holds personal data: ids and event facts only.

use sqlx::Row as _;

use super::{Backend, Db, StoreResult};

#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    pub event: &'a str,
    pub account_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub detail: serde_json::Value,
}

fn chain_hash(prev: &str, at: i64, e: &AuditEvent<'_>, detail: &str) -> String {
    crate::crypto::sha256_hex(&format!(
        "{prev}|{at}|{}|{}|{}|{}|{detail}",
        e.event,
        e.account_id.unwrap_or(""),
        e.client_id.unwrap_or(""),
        e.ip.unwrap_or("")
    ))
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
        let hash = chain_hash(&prev, now, &e, &detail);
        sqlx::query(
            "INSERT INTO audit_log (at, event, account_id, client_id, ip, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(now)
        .bind(e.event)
        .bind(e.account_id)
        .bind(e.client_id)
        .bind(e.ip)
        .bind(&detail)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Re-computes the chain; returns the sequence number of the first broken row, if any.
    pub async fn verify_audit_chain(&self) -> StoreResult<Option<i64>> {
        let rows = sqlx::query("SELECT seq, at, event, account_id, client_id, ip, detail, prev_hash, hash FROM audit_log ORDER BY seq")
            .fetch_all(self.pool())
            .await?;
        let mut prev = "genesis".to_string();
        for r in rows {
            let seq: i64 = r.try_get("seq")?;
            let event: String = r.try_get("event")?;
            let account_id: Option<String> = r.try_get("account_id")?;
            let client_id: Option<String> = r.try_get("client_id")?;
            let ip: Option<String> = r.try_get("ip")?;
            let detail: String = r.try_get("detail")?;
            let stored_prev: String = r.try_get("prev_hash")?;
            let hash: String = r.try_get("hash")?;
            let e = AuditEvent {
                event: &event,
                account_id: account_id.as_deref(),
                client_id: client_id.as_deref(),
                ip: ip.as_deref(),
                detail: serde_json::Value::Null,
            };
            if stored_prev != prev || chain_hash(&prev, r.try_get("at")?, &e, &detail) != hash {
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
