//! The notification outbox (see migration 0007): claims with a lease, completion, and the sweep's
//! query for announcements that are due.
use sqlx::FromRow;

use super::{Store, StoreResult};

/// Claims of one announcement before it is given up (a delivery that crashed its instance twice).
pub const MAX_ATTEMPTS: i64 = 3;

/// A request a channel has yet to announce, with what the announcement says.
#[derive(Clone, Debug, FromRow)]
pub struct DueNotification {
    pub auth_req_id: String,
    pub approver_id: String,
    pub approver_email: String,
    pub approver_name: String,
    pub client_name: String,
    pub authorization_details: String,
    pub expires_at: i64,
}

/// Whose requests a sweep looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// Approvers with a push subscription.
    PushSubscribers,
    Everyone,
}

impl Store {
    /// Claims the announcement of `auth_req_id` on `channel` until `now + lease_ms`: the first claim,
    /// or again once an unfinished claim's lease has run out. True when the caller now owns it.
    pub async fn claim_notification(
        &self,
        auth_req_id: &str,
        channel: &str,
        now: i64,
        lease_ms: i64,
    ) -> StoreResult<bool> {
        let claimed: Option<String> = sqlx::query_scalar(
            "INSERT INTO notification_outbox (auth_req_id, channel, claimed_until, attempts, done_at) \
             VALUES ($1, $2, $3, 1, NULL) \
             ON CONFLICT (auth_req_id, channel) DO UPDATE SET claimed_until = excluded.claimed_until, \
             attempts = notification_outbox.attempts + 1 \
             WHERE notification_outbox.done_at IS NULL AND notification_outbox.claimed_until < $4 \
             AND notification_outbox.attempts < $5 \
             RETURNING auth_req_id",
        )
        .bind(auth_req_id)
        .bind(channel)
        .bind(now + lease_ms)
        .bind(now)
        .bind(MAX_ATTEMPTS)
        .fetch_optional(self.pool())
        .await?;
        Ok(claimed.is_some())
    }

    pub async fn notification_done(
        &self,
        auth_req_id: &str,
        channel: &str,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE notification_outbox SET done_at = $3 WHERE auth_req_id = $1 AND channel = $2",
        )
        .bind(auth_req_id)
        .bind(channel)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Pending, unexpired requests made between `since` and `before` that `channel` has not announced
    /// and nobody is announcing (never claimed, or the lease ran out), oldest first.
    pub async fn notifications_due(
        &self,
        channel: &str,
        audience: Audience,
        now: i64,
        since: i64,
        before: i64,
    ) -> StoreResult<Vec<DueNotification>> {
        // Both audiences go through the (approver_id, created_at) index, one approver at a time.
        let approvers = match audience {
            Audience::PushSubscribers => "SELECT approver_id FROM push_subscriptions",
            Audience::Everyone => "SELECT id FROM approvers",
        };
        Ok(sqlx::query_as(&format!(
            "SELECT r.id AS auth_req_id, r.approver_id, a.email AS approver_email, a.name AS approver_name, \
             c.name AS client_name, r.authorization_details, r.expires_at \
             FROM auth_requests r \
             JOIN approvers a ON a.id = r.approver_id \
             JOIN clients c ON c.id = r.client_id \
             LEFT JOIN notification_outbox o ON o.auth_req_id = r.id AND o.channel = $1 \
             WHERE r.approver_id IN ({approvers}) AND r.created_at > $2 AND r.created_at < $3 \
             AND r.status = 'pending' AND r.expires_at > $4 \
             AND (o.auth_req_id IS NULL OR (o.done_at IS NULL AND o.claimed_until < $4 AND o.attempts < $5)) \
             ORDER BY r.created_at LIMIT 100"
        ))
        .bind(channel)
        .bind(since)
        .bind(before)
        .bind(now)
        .bind(MAX_ATTEMPTS)
        .fetch_all(self.pool())
        .await?)
    }
}
