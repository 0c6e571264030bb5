//! The `approvers` table: the people who decide.
use sqlx::FromRow;

use super::{Store, StoreError, StoreResult};

#[derive(Clone, Debug, FromRow)]
pub struct ApproverRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub user_code_hash: Option<String>,
    pub disabled: i64,
    pub created_at: i64,
}

const COLUMNS: &str = "id, email, name, role, user_code_hash, disabled, created_at";

impl Store {
    pub async fn insert_approver(&self, row: &ApproverRow) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO approvers ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&row.id)
        .bind(&row.email)
        .bind(&row.name)
        .bind(&row.role)
        .bind(&row.user_code_hash)
        .bind(row.disabled)
        .bind(row.created_at)
        .execute(self.pool())
        .await
        .map_err(|e| StoreError::on_unique(e, "email"))?;
        Ok(())
    }

    /// Emails are stored lower-cased, so callers pass the normalised form.
    pub async fn approver_by_email(&self, email: &str) -> StoreResult<Option<ApproverRow>> {
        Ok(
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM approvers WHERE email = $1"))
                .bind(email)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    pub async fn approver(&self, id: &str) -> StoreResult<Option<ApproverRow>> {
        Ok(
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM approvers WHERE id = $1"))
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    pub async fn approvers(&self) -> StoreResult<Vec<ApproverRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM approvers ORDER BY created_at, email"
        ))
        .fetch_all(self.pool())
        .await?)
    }

    /// Disables the approver with `email` and ends their sessions (a new epoch); the number of their
    /// requests still pending, or None if there is no such approver.
    pub async fn disable_approver(&self, email: &str, now: i64) -> StoreResult<Option<i64>> {
        let done = sqlx::query(
            "UPDATE approvers SET disabled = 1, session_epoch = session_epoch + 1 WHERE email = $1",
        )
        .bind(email)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let (pending,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM auth_requests r JOIN approvers a ON a.id = r.approver_id \
             WHERE a.email = $1 AND r.status IN ('pending', 'partly_approved') AND r.expires_at > $2",
        )
        .bind(email)
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok(Some(pending))
    }

    pub async fn disabled_approver_ids(&self) -> StoreResult<std::collections::HashSet<String>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM approvers WHERE disabled = 1")
            .fetch_all(self.pool())
            .await?;
        Ok(ids.into_iter().collect())
    }
}
