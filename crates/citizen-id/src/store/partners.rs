//! Partner services (OIDC clients) as stored. Validation happens before a `PartnerRecord`
//! reaches here (see `crate::partners`).

use serde::{Deserialize, Serialize};
use sqlx::Row as _;

use super::{Db, Row, StoreError, StoreResult, flag};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartnerRecord {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// RSA public keys as JWKs (PEM input is converted on registration).
    pub public_keys: Vec<serde_json::Value>,
    pub scopes: Vec<String>,
    pub vectors: Vec<String>,
    pub refresh_tokens: bool,
    pub im1: bool,
    /// SSO pairing: the partners whose `asserted_login_identity` this partner accepts.
    #[serde(default)]
    pub sso_from: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn from_row(row: &Row) -> StoreResult<PartnerRecord> {
    let json = |col: &str| -> StoreResult<serde_json::Value> {
        let text: String = row.try_get(col)?;
        serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("partners.{col}: {e}")))
    };
    let strings = |v: serde_json::Value| -> Vec<String> {
        v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(String::from)).collect()
    };
    let scopes: String = row.try_get("scopes")?;
    Ok(PartnerRecord {
        client_id: row.try_get("client_id")?,
        name: row.try_get("name")?,
        redirect_uris: strings(json("redirect_uris")?),
        public_keys: json("public_keys")?.as_array().cloned().unwrap_or_default(),
        scopes: scopes.split_whitespace().map(String::from).collect(),
        vectors: strings(json("vectors")?),
        refresh_tokens: row.try_get::<i64, _>("refresh_tokens")? != 0,
        im1: row.try_get::<i64, _>("im1")? != 0,
        sso_from: strings(json("sso_from")?),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const COLUMNS: &str = "client_id, name, redirect_uris, public_keys, scopes, vectors, refresh_tokens, im1, created_at, updated_at, sso_from";

impl Db {
    pub async fn insert_partner(&self, p: &PartnerRecord) -> StoreResult<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!("INSERT INTO partners ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")))
            .bind(&p.client_id)
            .bind(&p.name)
            .bind(serde_json::to_string(&p.redirect_uris).unwrap_or_default())
            .bind(serde_json::to_string(&p.public_keys).unwrap_or_default())
            .bind(p.scopes.join(" "))
            .bind(serde_json::to_string(&p.vectors).unwrap_or_default())
            .bind(flag(p.refresh_tokens))
            .bind(flag(p.im1))
            .bind(p.created_at)
            .bind(p.updated_at)
            .bind(serde_json::to_string(&p.sso_from).unwrap_or_default())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn update_partner(&self, p: &PartnerRecord) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE partners SET name = $2, redirect_uris = $3, public_keys = $4, scopes = $5, vectors = $6, \
             refresh_tokens = $7, im1 = $8, updated_at = $9, sso_from = $10 WHERE client_id = $1",
        )
        .bind(&p.client_id)
        .bind(&p.name)
        .bind(serde_json::to_string(&p.redirect_uris).unwrap_or_default())
        .bind(serde_json::to_string(&p.public_keys).unwrap_or_default())
        .bind(p.scopes.join(" "))
        .bind(serde_json::to_string(&p.vectors).unwrap_or_default())
        .bind(flag(p.refresh_tokens))
        .bind(flag(p.im1))
        .bind(p.updated_at)
        .bind(serde_json::to_string(&p.sso_from).unwrap_or_default())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn partner(&self, client_id: &str) -> StoreResult<Option<PartnerRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM partners WHERE client_id = $1")))
            .bind(client_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn partners(&self) -> StoreResult<Vec<PartnerRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM partners ORDER BY created_at, client_id")))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Removes a partner and everything issued to it.
    pub async fn delete_partner(&self, client_id: &str) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await?;
        for sql in [
            "DELETE FROM refresh_tokens WHERE grant_id IN (SELECT id FROM grants WHERE client_id = $1)",
            "DELETE FROM authorization_codes WHERE client_id = $1",
            "DELETE FROM grants WHERE client_id = $1",
            "DELETE FROM consents WHERE client_id = $1",
            "DELETE FROM client_user_metadata WHERE client_id = $1",
            "DELETE FROM client_assertions WHERE client_id = $1",
        ] {
            sqlx::query(sql).bind(client_id).execute(&mut *tx).await?;
        }
        let done = sqlx::query("DELETE FROM partners WHERE client_id = $1").bind(client_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}
