//! Abuse limits kept in the database, for every instance: once-only values seen (`used_jtis`: client
//! JWTs, and finished sign-in and enrollment ceremonies), and wrong user codes (`user_code_failures`).
use super::{Store, StoreResult};

impl Store {
    /// Records `key` until `expires_at` (ms): true the first time, false while it is recorded. An
    /// expired record is taken over, in the same statement, so two instances cannot both win.
    pub async fn first_use(&self, key: &str, expires_at: i64, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO used_jtis (key, expires_at) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE used_jtis.expires_at <= $3",
        )
        .bind(key)
        .bind(expires_at)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    /// Wrong user codes from `client_id` for `approver_id` since `since`, and when the last was.
    pub async fn user_code_failures(
        &self,
        client_id: &str,
        approver_id: &str,
        since: i64,
    ) -> StoreResult<Option<(i64, i64)>> {
        Ok(sqlx::query_as(
            "SELECT failures, last_failed_at FROM user_code_failures \
             WHERE client_id = $1 AND approver_id = $2 AND last_failed_at > $3",
        )
        .bind(client_id)
        .bind(approver_id)
        .bind(since)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Counts a wrong user code at `now`; failures before `since` are forgotten.
    pub async fn record_user_code_failure(
        &self,
        client_id: &str,
        approver_id: &str,
        now: i64,
        since: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO user_code_failures (client_id, approver_id, failures, last_failed_at) \
             VALUES ($1, $2, 1, $3) ON CONFLICT (client_id, approver_id) DO UPDATE SET \
             failures = CASE WHEN user_code_failures.last_failed_at > $4 \
             THEN user_code_failures.failures + 1 ELSE 1 END, last_failed_at = $3",
        )
        .bind(client_id)
        .bind(approver_id)
        .bind(now)
        .bind(since)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A right user code wipes the count.
    pub async fn clear_user_code_failures(
        &self,
        client_id: &str,
        approver_id: &str,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM user_code_failures WHERE client_id = $1 AND approver_id = $2")
            .bind(client_id)
            .bind(approver_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
