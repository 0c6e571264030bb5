//! The `delegations` table. Changes to it change who can approve, so they are written in the admin
//! log's transaction (`admin_log::ApproverUpdate`); this module reads it and holds those writes.
use sqlx::{AnyConnection, FromRow};

use super::{Store, StoreResult};

#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct DelegationRow {
    pub id: String,
    pub approver_id: String,
    pub delegate_id: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub set_by: String,
    pub created_at: i64,
    pub ended_at: Option<i64>,
}

const COLUMNS: &str =
    "id, approver_id, delegate_id, starts_at, ends_at, set_by, created_at, ended_at";

impl Store {
    /// Delegations not over at `now` (running or yet to start), soonest first.
    pub async fn current_delegations(&self, now: i64) -> StoreResult<Vec<DelegationRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM delegations WHERE ended_at IS NULL AND ends_at > $1 \
             ORDER BY starts_at, id"
        ))
        .bind(now)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn delegation(&self, id: &str) -> StoreResult<Option<DelegationRow>> {
        Ok(
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM delegations WHERE id = $1"))
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }
}

pub(super) async fn insert(conn: &mut AnyConnection, row: &DelegationRow) -> StoreResult<bool> {
    sqlx::query(&format!(
        "INSERT INTO delegations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(&row.id)
    .bind(&row.approver_id)
    .bind(&row.delegate_id)
    .bind(row.starts_at)
    .bind(row.ends_at)
    .bind(&row.set_by)
    .bind(row.created_at)
    .bind(row.ended_at)
    .execute(conn)
    .await?;
    Ok(true)
}

/// Ends a delegation that is not over yet; false when it is.
pub(super) async fn end(conn: &mut AnyConnection, id: &str, at: i64) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE delegations SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL AND ends_at > $2",
    )
    .bind(id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
