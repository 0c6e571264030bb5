//! The `clients` table: registered agents.
use sqlx::FromRow;

use super::{flag, Store, StoreError, StoreResult};

#[derive(Clone, Debug, FromRow)]
pub struct ClientRow {
    pub id: String,
    pub name: String,
    pub delivery_mode: String,
    pub notify_url: Option<String>,
    pub scopes: String,
    pub auth_method: String,
    pub secret_hash: Option<String>,
    pub jwks: Option<String>,
    pub disabled: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// May introspect tokens (see migration 0013).
    pub resource_server: i64,
    /// Must use DPoP (see migration 0014).
    pub dpop_bound: i64,
    /// When it was last disabled (see migration 0020).
    pub last_disabled_at: Option<i64>,
}

const COLUMNS: &str = "id, name, delivery_mode, notify_url, scopes, auth_method, secret_hash, jwks, disabled, created_at, updated_at, resource_server, dpop_bound, last_disabled_at";

impl Store {
    pub async fn insert_client(&self, row: &ClientRow) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO clients ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.delivery_mode)
        .bind(&row.notify_url)
        .bind(&row.scopes)
        .bind(&row.auth_method)
        .bind(&row.secret_hash)
        .bind(&row.jwks)
        .bind(row.disabled)
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(row.resource_server)
        .bind(row.dpop_bound)
        .bind(row.last_disabled_at)
        .execute(self.pool())
        .await
        .map_err(|e| StoreError::on_unique(e, "client id"))?;
        Ok(())
    }

    pub async fn client(&self, id: &str) -> StoreResult<Option<ClientRow>> {
        Ok(
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM clients WHERE id = $1"))
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    pub async fn clients(&self) -> StoreResult<Vec<ClientRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM clients ORDER BY created_at, id"
        ))
        .fetch_all(self.pool())
        .await?)
    }

    /// Returns false when no such client exists.
    pub async fn set_client_disabled(
        &self,
        id: &str,
        disabled: bool,
        now: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE clients SET disabled = $1, updated_at = $2, \
             last_disabled_at = CASE WHEN $1 = 1 THEN $2 ELSE last_disabled_at END WHERE id = $3",
        )
        .bind(flag(disabled))
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How a client is told of decisions, and what it may ask for. Returns false when no such client
    /// exists.
    pub async fn set_client_settings(
        &self,
        id: &str,
        delivery_mode: &str,
        notify_url: Option<&str>,
        scopes: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE clients SET delivery_mode = $1, notify_url = $2, scopes = $3, updated_at = $4 \
             WHERE id = $5",
        )
        .bind(delivery_mode)
        .bind(notify_url)
        .bind(scopes)
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Returns false when no such client exists.
    pub async fn set_client_secret_hash(
        &self,
        id: &str,
        secret_hash: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE clients SET secret_hash = $1, updated_at = $2 WHERE id = $3")
                .bind(secret_hash)
                .bind(now)
                .bind(id)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() == 1)
    }
}
