//! The `recoveries` table (migrations 0023, 0024): a recovery started by one admin and approved by
//! a second, or made at once by the operator, or cancelled by any admin before it is approved.
//! Approving one ends the approver's passkeys and sessions and writes its single-use link, in one
//! transaction.
use sqlx::{AnyConnection, FromRow};

use super::{invitations::InvitationRow, Store, StoreResult};

#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct RecoveryRow {
    pub id: String,
    pub approver_id: String,
    /// None: the operator.
    pub started_by: Option<String>,
    pub started_at: i64,
    pub approved_by: Option<String>,
    pub approved_at: Option<i64>,
    pub cancelled_by: Option<String>,
    pub cancelled_at: Option<i64>,
}

const COLUMNS: &str =
    "id, approver_id, started_by, started_at, approved_by, approved_at, cancelled_by, cancelled_at";

impl Store {
    pub async fn recovery(&self, id: &str) -> StoreResult<Option<RecoveryRow>> {
        Ok(
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM recoveries WHERE id = $1"))
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// Recoveries started since `since`, neither approved nor cancelled, oldest first.
    pub async fn open_recoveries(&self, since: i64) -> StoreResult<Vec<RecoveryRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM recoveries WHERE approved_at IS NULL AND cancelled_at IS NULL \
             AND started_at > $1 ORDER BY started_at"
        ))
        .bind(since)
        .fetch_all(self.pool())
        .await?)
    }
}

pub(super) async fn start(conn: &mut AnyConnection, row: &RecoveryRow) -> StoreResult<()> {
    sqlx::query(&format!(
        "INSERT INTO recoveries ({COLUMNS}) VALUES ($1, $2, $3, $4, NULL, NULL, NULL, NULL)"
    ))
    .bind(&row.id)
    .bind(&row.approver_id)
    .bind(&row.started_by)
    .bind(row.started_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Approves recovery `id` once: the approver's passkeys go (their registry entries stay, so what
/// they signed still verifies), their sessions end, and the link is written. False, with nothing
/// changed, if it was already approved or has been cancelled.
pub(super) async fn approve(
    conn: &mut AnyConnection,
    id: &str,
    approver_id: &str,
    approved_by: Option<&str>,
    now: i64,
    link: &InvitationRow,
) -> StoreResult<bool> {
    let approved = sqlx::query(
        "UPDATE recoveries SET approved_by = $1, approved_at = $2 \
         WHERE id = $3 AND approver_id = $4 AND approved_at IS NULL AND cancelled_at IS NULL",
    )
    .bind(approved_by)
    .bind(now)
    .bind(id)
    .bind(approver_id)
    .execute(&mut *conn)
    .await?;
    if approved.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM passkeys WHERE approver_id = $1")
        .bind(approver_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE approvers SET session_epoch = session_epoch + 1 WHERE id = $1")
        .bind(approver_id)
        .execute(&mut *conn)
        .await?;
    super::invitations::insert(conn, link).await?;
    Ok(true)
}

/// Cancels recovery `id` once, before it is approved; false, with nothing changed, otherwise.
pub(super) async fn cancel(
    conn: &mut AnyConnection,
    id: &str,
    cancelled_by: &str,
    now: i64,
) -> StoreResult<bool> {
    let cancelled = sqlx::query(
        "UPDATE recoveries SET cancelled_by = $1, cancelled_at = $2 \
         WHERE id = $3 AND approved_at IS NULL AND cancelled_at IS NULL",
    )
    .bind(cancelled_by)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(cancelled.rows_affected() == 1)
}
