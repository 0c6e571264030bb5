//! The `invitations` table, and enrolling through one.
use sqlx::FromRow;

use super::{
    approvers::ApproverRow,
    key_registry::{append_key, KeySeal},
    passkeys::{PasskeyRow, PASSKEY_COLUMNS},
    Store, StoreError, StoreResult,
};

#[derive(Clone, Debug, FromRow)]
pub struct InvitationRow {
    pub token_hash: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub approver_id: Option<String>,
    /// Its public id, named in the key registry entry of the passkey it enrolls (None: made before ids).
    pub id: Option<String>,
    /// The admin who issued it; None: the operator, on the server's command line.
    pub issued_by: Option<String>,
    /// The recovery it is the link of: it enrolls a new passkey for someone whose old ones ended.
    pub recovery_id: Option<String>,
}

pub use crate::identity::accounts::Enrollment;

/// How many passkeys approver `$1` has or had (revoked ones keep their registry entry).
const HAS_HAD_PASSKEY: &str = "SELECT (SELECT COUNT(*) FROM passkeys WHERE approver_id = $1) \
     + (SELECT COUNT(*) FROM key_registry WHERE approver_id = $1)";

const INVITATION_COLUMNS: &str =
    "token_hash, email, name, role, created_at, expires_at, used_at, approver_id, id, issued_by, recovery_id";

impl Store {
    pub async fn insert_invitation(&self, row: &InvitationRow) -> StoreResult<()> {
        insert(&mut *self.pool().acquire().await?, row).await
    }

    /// Whether approver `id` has or ever had a passkey.
    pub async fn has_had_passkey(&self, id: &str) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar(HAS_HAD_PASSKEY)
            .bind(id)
            .fetch_one(self.pool())
            .await?;
        Ok(n > 0)
    }

    pub async fn invitation(&self, token_hash: &str) -> StoreResult<Option<InvitationRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Enrolls through an invitation in one transaction: the invitation is used up (once, and only if
    /// unexpired), the approver is created unless `approver.id` already exists, and the passkey added.
    pub async fn enroll(
        &self,
        token_hash: &str,
        now: i64,
        approver: &ApproverRow,
        create: bool,
        passkey: &PasskeyRow,
        seal: KeySeal<'_>,
    ) -> StoreResult<Enrollment> {
        let mut tx = self.begin_key_chain().await?;
        // The approver first (the invitation refers to it); the whole transaction is dropped, undoing
        // it, when the invitation turns out to be used or expired.
        if create {
            sqlx::query(
                "INSERT INTO approvers (id, email, name, role, user_code_hash, disabled, created_at) VALUES ($1, $2, $3, $4, NULL, 0, $5)",
            )
            .bind(&approver.id)
            .bind(&approver.email)
            .bind(&approver.name)
            .bind(&approver.role)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::on_unique(e, "email"))?;
        } else {
            // Checked inside the key chain's transaction, so two links for one passkey-less approver
            // opened at once still add one passkey, not two. A recovery's link follows passkeys
            // that were ended when it was approved; any other link, someone who never had one.
            let recovery: Option<Option<String>> =
                sqlx::query_scalar("SELECT recovery_id FROM invitations WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
            let rule = match recovery.flatten() {
                Some(_) => "SELECT COUNT(*) FROM passkeys WHERE approver_id = $1",
                None => HAS_HAD_PASSKEY,
            };
            let existing: i64 = sqlx::query_scalar(rule)
                .bind(&approver.id)
                .fetch_one(&mut *tx)
                .await?;
            if existing > 0 {
                return Ok(Enrollment::HasPasskey);
            }
        }
        let used = sqlx::query(
            "UPDATE invitations SET used_at = $1, approver_id = $2 WHERE token_hash = $3 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(&approver.id)
        .bind(token_hash)
        .execute(&mut *tx)
        .await?;
        if used.rows_affected() != 1 {
            return Ok(Enrollment::InvitationSpent);
        }
        sqlx::query(&format!("INSERT INTO passkeys ({PASSKEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, NULL)"))
            .bind(&passkey.credential_id)
            .bind(&passkey.approver_id)
            .bind(&passkey.name)
            .bind(&passkey.passkey)
            .bind(passkey.backup_state)
            .bind(passkey.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::on_unique(e, "passkey"))?;
        append_key(&mut tx, seal).await?;
        tx.commit().await?;
        Ok(Enrollment::Enrolled)
    }

    /// Ends every unused invitation without an e-mail (first-admin links) still valid at `now`.
    pub async fn expire_open_invitations(&self, now: i64) -> StoreResult<u64> {
        Ok(sqlx::query(
            "UPDATE invitations SET expires_at = $1 \
             WHERE email IS NULL AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    pub async fn count_approvers(&self) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM approvers")
            .fetch_one(self.pool())
            .await?;
        Ok(n)
    }
}

/// Writes a new invitation (on its own, or with its admin log entry).
pub(super) async fn insert(conn: &mut sqlx::AnyConnection, row: &InvitationRow) -> StoreResult<()> {
    sqlx::query(&format!("INSERT INTO invitations ({INVITATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, $7, $8, $9)"))
        .bind(&row.token_hash)
        .bind(&row.email)
        .bind(&row.name)
        .bind(&row.role)
        .bind(row.created_at)
        .bind(row.expires_at)
        .bind(&row.id)
        .bind(&row.issued_by)
        .bind(&row.recovery_id)
        .execute(conn)
        .await?;
    Ok(())
}
