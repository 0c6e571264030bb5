//! The `admin_log` table: what admins did in the console, append-only (migration 0016).
use sqlx::FromRow;

use super::{Store, StoreResult};
use crate::clock::Millis;

#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct AdminLogRow {
    pub seq: i64,
    pub at: i64,
    pub admin_id: String,
    pub admin_email: String,
    pub action: String,
    pub subject: String,
    pub detail: Option<String>,
}

/// One entry to append.
pub struct AdminEntry<'a> {
    pub at: Millis,
    pub admin_id: &'a str,
    pub admin_email: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub detail: Option<&'a str>,
}

impl Store {
    pub async fn append_admin_log(&self, entry: &AdminEntry<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO admin_log (at, admin_id, admin_email, action, subject, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(entry.at)
        .bind(entry.admin_id)
        .bind(entry.admin_email)
        .bind(entry.action)
        .bind(entry.subject)
        .bind(entry.detail)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The newest `limit` entries, newest first.
    pub async fn admin_log(&self, limit: i64) -> StoreResult<Vec<AdminLogRow>> {
        Ok(sqlx::query_as(
            "SELECT seq, at, admin_id, admin_email, action, subject, detail FROM admin_log \
             ORDER BY seq DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}
