//! Browser sessions (the session store's rows), and each approver's session epoch, which "sign out
//! everywhere" moves on. Expired rows are deleted by `retention`.
use super::{Store, StoreResult};

impl Store {
    pub async fn session_epoch(&self, approver_id: &str) -> StoreResult<Option<i64>> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT session_epoch FROM approvers WHERE id = $1 AND disabled = 0")
                .bind(approver_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(e,)| e))
    }

    /// "Sign out everywhere": every session made before now stops being accepted.
    pub async fn bump_session_epoch(&self, approver_id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE approvers SET session_epoch = session_epoch + 1 WHERE id = $1")
            .bind(approver_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn save_session(&self, id: &str, data: &str, expires_at: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
        )
        .bind(id)
        .bind(data)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Creates a session row only if the id is unused; false on a collision.
    pub async fn create_session(&self, id: &str, data: &str, expires_at: i64) -> StoreResult<bool> {
        let done = sqlx::query("INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
            .bind(id)
            .bind(data)
            .bind(expires_at)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A live session's data and expiry.
    pub async fn load_session(&self, id: &str, now: i64) -> StoreResult<Option<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT data, expires_at FROM sessions WHERE id = $1 AND expires_at > $2",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn delete_session(&self, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
