//! The `passkeys` table. Each passkey's public key is also in the sealed key registry
//! (`key_registry`), written in the same transaction.
use sqlx::FromRow;

use super::{
    key_registry::{append_key, KeySeal},
    Store, StoreError, StoreResult,
};

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

impl PasskeyRow {
    /// Whether this passkey may still sign for `approver_id`: theirs, and not suspended.
    pub fn signs_for(&self, approver_id: &str) -> bool {
        self.approver_id == approver_id && self.suspended_at.is_none()
    }
}

pub(super) const PASSKEY_COLUMNS: &str =
    "credential_id, approver_id, name, passkey, backup_state, created_at, last_used_at, suspended_at, suspended_reason";

impl Store {
    /// Adds a passkey, and the registry entry `seal` makes for its public key, in one transaction.
    pub async fn insert_passkey(&self, row: &PasskeyRow, seal: KeySeal<'_>) -> StoreResult<()> {
        let mut tx = self.begin_key_chain().await?;
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
        append_key(&mut tx, seal).await?;
        tx.commit().await?;
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

    /// Every approver's passkeys, for the admin console.
    pub async fn all_passkeys(&self) -> StoreResult<Vec<PasskeyRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys ORDER BY approver_id, created_at, credential_id"
        ))
        .fetch_all(self.pool())
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
