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
}
