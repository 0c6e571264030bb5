//! The `signing_keys` table: the server's JWS keys, the newest unretired one active.
use sqlx::FromRow;

use super::{Store, StoreError, StoreResult};

#[derive(Clone, Debug, FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    pub private_jwk: String,
    pub public_jwk: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

const COLUMNS: &str = "kid, alg, private_jwk, public_jwk, created_at, retired_at";

impl Store {
    /// Keys still worth publishing: unretired ones, and retired ones retired after `retired_after`.
    pub async fn signing_keys(&self, retired_after: i64) -> StoreResult<Vec<SigningKeyRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at DESC, kid"
        ))
        .bind(retired_after)
        .fetch_all(self.pool())
        .await?)
    }

    /// Adds `row` as the active key and retires every other active key, atomically.
    pub async fn rotate_signing_key(&self, row: &SigningKeyRow) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
            .bind(row.created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "INSERT INTO signing_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, NULL)"
        ))
        .bind(&row.kid)
        .bind(&row.alg)
        .bind(&row.private_jwk)
        .bind(&row.public_jwk)
        .bind(row.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::on_unique(e, "key id"))?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a key's stored private half, if it is still `was` (instances starting at once seal
    /// each key once).
    pub async fn reseal_signing_key(&self, kid: &str, was: &str, sealed: &str) -> StoreResult<()> {
        sqlx::query("UPDATE signing_keys SET private_jwk = $1 WHERE kid = $2 AND private_jwk = $3")
            .bind(sealed)
            .bind(kid)
            .bind(was)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
