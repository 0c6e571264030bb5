//! What is deleted once it can no longer matter: expired sessions (and the sign-in, enrollment and
//! decision ceremonies kept in them), the notification outbox of requests that have ended, and the
//! `jti`s of once-only client JWTs that have expired. The
//! evidence (requests, decisions, issued tokens, keys) is never deleted here.
use super::{Store, StoreResult};

/// How many rows one sweep removed, per table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub sessions: u64,
    pub outbox: u64,
    pub used_jtis: u64,
}

impl Store {
    /// Deletes what ended before `now`.
    pub async fn sweep_expired(&self, now: i64) -> StoreResult<Swept> {
        let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(self.pool())
            .await?
            .rows_affected();
        // A request that has ended needs no announcement, sent or not; a client notification goes
        // once delivered or given up (its expiry is itself news to the client).
        let outbox = sqlx::query(
            "DELETE FROM notification_outbox WHERE (channel <> 'client' OR done_at IS NOT NULL) \
             AND EXISTS (SELECT 1 FROM auth_requests r \
             WHERE r.id = notification_outbox.auth_req_id AND r.expires_at <= $1)",
        )
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        let used_jtis = sqlx::query("DELETE FROM used_jtis WHERE expires_at <= $1")
            .bind(now)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(Swept {
            sessions,
            outbox,
            used_jtis,
        })
    }
}
