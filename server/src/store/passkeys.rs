//! The `passkeys` table and the append-only registry of their public keys (`passkey_keys`), which the
//! audit checks decision signatures with.
use sqlx::FromRow;

use super::{Store, StoreError, StoreResult};

#[derive(Clone, Debug, FromRow)]
pub struct PasskeyRow {
    pub credential_id: String,
    pub approver_id: String,
    pub name: String,
    pub passkey: String,
    pub backup_state: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub suspended_at: Option<i64>,
    pub suspended_reason: Option<String>,
}

pub(super) const PASSKEY_COLUMNS: &str =
    "credential_id, approver_id, name, passkey, backup_state, created_at, last_used_at, suspended_at, suspended_reason";

impl Store {
    /// Adds a passkey, and its public key to the append-only key registry, in one transaction.
    pub async fn insert_passkey(&self, row: &PasskeyRow, public_key: &str) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(&format!(
            "INSERT INTO passkeys ({PASSKEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&row.credential_id)
        .bind(&row.approver_id)
        .bind(&row.name)
        .bind(&row.passkey)
        .bind(row.backup_state)
        .bind(row.created_at)
        .bind(row.last_used_at)
        .bind(row.suspended_at)
        .bind(&row.suspended_reason)
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::on_unique(e, "passkey"))?;
        register_key(&mut tx, row, public_key).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The registered public key of a passkey, kept even after the passkey was removed:
    /// `(approver_id, public_key)`.
    pub async fn registered_key(
        &self,
        credential_id: &str,
    ) -> StoreResult<Option<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT approver_id, public_key FROM passkey_keys WHERE credential_id = $1",
        )
        .bind(credential_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Passkeys whose key is not in the registry yet (those added before it existed).
    pub async fn passkeys_unregistered(&self) -> StoreResult<Vec<PasskeyRow>> {
        let columns: Vec<String> = PASSKEY_COLUMNS
            .split(',')
            .map(|c| format!("p.{}", c.trim()))
            .collect();
        Ok(sqlx::query_as(&format!(
            "SELECT {} FROM passkeys p LEFT JOIN passkey_keys k ON k.credential_id = p.credential_id \
             WHERE k.credential_id IS NULL",
            columns.join(", ")
        ))
        .fetch_all(self.pool())
        .await?)
    }

    /// Registers the key of a passkey added before the registry existed (idempotent).
    pub async fn backfill_key(&self, row: &PasskeyRow, public_key: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO passkey_keys (credential_id, approver_id, public_key, registered_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (credential_id) DO NOTHING",
        )
        .bind(&row.credential_id)
        .bind(&row.approver_id)
        .bind(public_key)
        .bind(row.created_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn passkey(&self, credential_id: &str) -> StoreResult<Option<PasskeyRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = $1"
        ))
        .bind(credential_id)
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn passkeys_of(&self, approver_id: &str) -> StoreResult<Vec<PasskeyRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE approver_id = $1 ORDER BY created_at, credential_id"
        ))
        .bind(approver_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// After a successful assertion: the new counter and backup state live in `passkey`.
    pub async fn record_passkey_use(
        &self,
        credential_id: &str,
        passkey: &str,
        backup_state: bool,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE passkeys SET passkey = $1, backup_state = $2, last_used_at = $3 WHERE credential_id = $4")
            .bind(passkey)
            .bind(i64::from(backup_state))
            .bind(now)
            .bind(credential_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn suspend_passkey(
        &self,
        credential_id: &str,
        reason: &str,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE passkeys SET suspended_at = $1, suspended_reason = $2 WHERE credential_id = $3 AND suspended_at IS NULL")
            .bind(now)
            .bind(reason)
            .bind(credential_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn rename_passkey(
        &self,
        approver_id: &str,
        credential_id: &str,
        name: &str,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE passkeys SET name = $1 WHERE credential_id = $2 AND approver_id = $3",
        )
        .bind(name)
        .bind(credential_id)
        .bind(approver_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a passkey unless it is the approver's last one; false if nothing was removed.
    pub async fn remove_passkey(
        &self,
        approver_id: &str,
        credential_id: &str,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM passkeys WHERE credential_id = $1 AND approver_id = $2 \
             AND (SELECT COUNT(*) FROM passkeys WHERE approver_id = $2) > 1",
        )
        .bind(credential_id)
        .bind(approver_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// Adds a passkey's public key to the append-only registry, within the transaction adding the passkey.
pub(super) async fn register_key(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    row: &PasskeyRow,
    public_key: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO passkey_keys (credential_id, approver_id, public_key, registered_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&row.credential_id)
    .bind(&row.approver_id)
    .bind(public_key)
    .bind(row.created_at)
    .execute(&mut **tx)
    .await
    .map_err(|e| StoreError::on_unique(e, "passkey"))?;
    Ok(())
}
