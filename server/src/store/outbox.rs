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
    /// 1 when the request is shared (announced to each addressee under their own key).
    pub shared: i64,
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
        // A shared request is announced to each of its addressees, each under its own outbox
        // key (`channel:approver`, see `notify::outbox_key`).
        let due = "AND r.created_at > $2 AND r.created_at < $3 \
             AND r.status IN ('pending', 'partly_approved') AND r.expires_at > $4 \
             AND (o.auth_req_id IS NULL OR (o.done_at IS NULL AND o.claimed_until < $4 AND o.attempts < $5))";
        Ok(sqlx::query_as(&format!(
            "SELECT * FROM (\
             SELECT r.id AS auth_req_id, r.approver_id, a.email AS approver_email, a.name AS approver_name, \
             c.name AS client_name, r.authorization_details, r.expires_at, r.created_at, \
             CAST(0 AS BIGINT) AS shared \
             FROM auth_requests r \
             JOIN approvers a ON a.id = r.approver_id \
             JOIN clients c ON c.id = r.client_id \
             LEFT JOIN notification_outbox o ON o.auth_req_id = r.id AND o.channel = $1 \
             WHERE r.approver_id IN ({approvers}) AND r.shared = 0 {due} \
             UNION ALL \
             SELECT r.id AS auth_req_id, x.approver_id, a.email AS approver_email, a.name AS approver_name, \
             c.name AS client_name, r.authorization_details, r.expires_at, r.created_at, \
             CAST(1 AS BIGINT) AS shared \
             FROM request_addressees x \
             JOIN auth_requests r ON r.id = x.auth_req_id \
             JOIN approvers a ON a.id = x.approver_id \
             JOIN clients c ON c.id = r.client_id \
             LEFT JOIN notification_outbox o ON o.auth_req_id = r.id AND o.channel = $1 || ':' || x.approver_id \
             WHERE x.approver_id IN ({approvers}) {due}) due \
             ORDER BY created_at LIMIT 100"
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

/// The outbox channel of client notifications (CIBA ping and push).
pub const CLIENT: &str = "client";

/// A client notification to deliver: the request it is about, and where it goes.
#[derive(Clone, Debug, FromRow)]
pub struct ClientDue {
    pub auth_req_id: String,
    pub client_id: String,
    /// `ping` or `push`.
    pub delivery_mode: String,
    pub notify_url: Option<String>,
    pub notification_token: Option<String>,
    pub expires_at: i64,
    /// Tries so far, this one included.
    pub attempts: i64,
}

/// Queues the client notification of `auth_req_id`, due at `now`, within the transaction that decides
/// it (once: a second queueing changes nothing).
pub(super) async fn queue_client_notification(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    auth_req_id: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO notification_outbox (auth_req_id, channel, claimed_until, attempts, done_at, due_at) \
         VALUES ($1, 'client', 0, 0, NULL, $2) ON CONFLICT (auth_req_id, channel) DO NOTHING",
    )
    .bind(auth_req_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Queues a notification for each ping or push client's request that expired undecided since
    /// `since`.
    pub async fn queue_expired_client_notifications(
        &self,
        now: i64,
        since: i64,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "INSERT INTO notification_outbox (auth_req_id, channel, claimed_until, attempts, done_at, due_at) \
             SELECT r.id, 'client', 0, 0, NULL, $1 FROM auth_requests r JOIN clients c ON c.id = r.client_id \
             WHERE r.status IN ('pending', 'partly_approved') AND r.expires_at <= $1 AND r.expires_at > $2 \
             AND c.delivery_mode IN ('ping', 'push') AND r.notification_token IS NOT NULL \
             ON CONFLICT (auth_req_id, channel) DO NOTHING",
        )
        .bind(now)
        .bind(since)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Claims up to `limit` client notifications that are due and unclaimed (or whose claim ran out)
    /// until `now + lease_ms`; each is claimed by one instance only.
    pub async fn claim_client_notifications(
        &self,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<ClientDue>> {
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT auth_req_id FROM notification_outbox \
             WHERE channel = 'client' AND done_at IS NULL AND due_at <= $1 AND claimed_until < $1 \
             ORDER BY due_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut claimed = Vec::new();
        for auth_req_id in due {
            let won = sqlx::query(
                "UPDATE notification_outbox SET claimed_until = $2, attempts = attempts + 1 \
                 WHERE auth_req_id = $1 AND channel = 'client' AND done_at IS NULL \
                 AND due_at <= $3 AND claimed_until < $3",
            )
            .bind(&auth_req_id)
            .bind(now + lease_ms)
            .bind(now)
            .execute(self.pool())
            .await?;
            if won.rows_affected() != 1 {
                continue;
            }
            let row: Option<ClientDue> = sqlx::query_as(
                "SELECT r.id AS auth_req_id, r.client_id, c.delivery_mode, c.notify_url, r.notification_token, \
                 r.expires_at, o.attempts FROM notification_outbox o \
                 JOIN auth_requests r ON r.id = o.auth_req_id JOIN clients c ON c.id = r.client_id \
                 WHERE o.auth_req_id = $1 AND o.channel = 'client'",
            )
            .bind(&auth_req_id)
            .fetch_optional(self.pool())
            .await?;
            claimed.extend(row);
        }
        Ok(claimed)
    }

    /// A failed try (`error` says why): the notification is due again at `due_at`, for whichever
    /// instance claims it.
    pub async fn retry_client_notification(
        &self,
        auth_req_id: &str,
        due_at: i64,
        error: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE notification_outbox SET claimed_until = 0, due_at = $2, last_error = $3 \
             WHERE auth_req_id = $1 AND channel = 'client' AND done_at IS NULL",
        )
        .bind(auth_req_id)
        .bind(due_at)
        .bind(error)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
