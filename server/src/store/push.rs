//! The Web Push tables: the deployment's VAPID key and the browsers subscribed to notifications.
use sqlx::FromRow;

use super::{Store, StoreResult};

#[derive(Clone, Debug, FromRow)]
pub struct VapidKeyRow {
    pub private_key: String,
    pub public_key: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, FromRow)]
pub struct PushSubscriptionRow {
    pub id: String,
    pub approver_id: String,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    pub label: String,
    pub created_at: i64,
    pub last_sent_at: Option<i64>,
    pub failures: i64,
}

const COLUMNS: &str =
    "id, approver_id, endpoint, p256dh, auth, label, created_at, last_sent_at, failures";

impl Store {
    /// The VAPID key; `make` creates one when there is none. Several instances starting at once all end
    /// up with the one key that was inserted first.
    pub async fn vapid_key(
        &self,
        make: impl FnOnce() -> anyhow::Result<VapidKeyRow>,
    ) -> anyhow::Result<VapidKeyRow> {
        let select =
            "SELECT private_key, public_key, created_at FROM vapid_keys WHERE id = 'current'";
        if let Some(row) = sqlx::query_as(select).fetch_optional(self.pool()).await? {
            return Ok(row);
        }
        let new = make()?;
        sqlx::query(
            "INSERT INTO vapid_keys (id, private_key, public_key, created_at) VALUES ('current', $1, $2, $3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&new.private_key)
        .bind(&new.public_key)
        .bind(new.created_at)
        .execute(self.pool())
        .await?;
        Ok(sqlx::query_as(select).fetch_one(self.pool()).await?)
    }

    /// The stored VAPID private key (sealed, or plain from an earlier version), if there is one.
    pub async fn current_vapid_key(&self) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT private_key FROM vapid_keys WHERE id = 'current'")
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// Replaces the stored VAPID private key, if it is still `was`.
    pub async fn reseal_vapid_key(&self, was: &str, sealed: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE vapid_keys SET private_key = $1 WHERE id = 'current' AND private_key = $2",
        )
        .bind(sealed)
        .bind(was)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Saves a browser's subscription and returns its id. A browser has one endpoint; subscribing again
    /// (after a sign-in as someone else on a shared device, or with fresh keys) replaces what was
    /// stored for it, keeping its id.
    pub async fn upsert_push_subscription(&self, row: &PushSubscriptionRow) -> StoreResult<String> {
        Ok(sqlx::query_scalar(&format!(
            "INSERT INTO push_subscriptions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, 0) \
             ON CONFLICT (endpoint) DO UPDATE SET approver_id = excluded.approver_id, \
             p256dh = excluded.p256dh, auth = excluded.auth, label = excluded.label, \
             created_at = excluded.created_at, last_sent_at = NULL, failures = 0 RETURNING id"
        ))
        .bind(&row.id)
        .bind(&row.approver_id)
        .bind(&row.endpoint)
        .bind(&row.p256dh)
        .bind(&row.auth)
        .bind(&row.label)
        .bind(row.created_at)
        .fetch_one(self.pool())
        .await?)
    }

    /// The push service gave a browser a new subscription: move the old one's record to it (same
    /// approver, device and id). False when the old endpoint is unknown.
    /// The subscription at `endpoint`, if any.
    pub async fn push_subscription_at(
        &self,
        endpoint: &str,
    ) -> StoreResult<Option<PushSubscriptionRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM push_subscriptions WHERE endpoint = $1"
        ))
        .bind(endpoint)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Moves subscription `id`, still at `old_endpoint`, to a new endpoint and keys.
    pub async fn renew_push_subscription(
        &self,
        id: &str,
        old_endpoint: &str,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE push_subscriptions SET endpoint = $2, p256dh = $3, auth = $4, failures = 0 \
             WHERE endpoint = $1 AND id = $5",
        )
        .bind(old_endpoint)
        .bind(endpoint)
        .bind(p256dh)
        .bind(auth)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn push_subscriptions_of(
        &self,
        approver_id: &str,
    ) -> StoreResult<Vec<PushSubscriptionRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM push_subscriptions WHERE approver_id = $1 ORDER BY created_at, id"
        ))
        .bind(approver_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Every approver with at least one subscription.
    pub async fn push_subscribers(&self) -> StoreResult<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT approver_id FROM push_subscriptions")
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// Removes one of `approver_id`'s subscriptions; false when there was none.
    pub async fn delete_push_subscription(&self, approver_id: &str, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM push_subscriptions WHERE id = $1 AND approver_id = $2")
            .bind(id)
            .bind(approver_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The push service says the subscription is gone (404/410): it will never deliver again.
    pub async fn forget_push_endpoint(&self, endpoint: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM push_subscriptions WHERE endpoint = $1")
            .bind(endpoint)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A delivery the push service accepted: the failure count starts over.
    pub async fn push_delivered(&self, id: &str, at: i64) -> StoreResult<()> {
        sqlx::query("UPDATE push_subscriptions SET last_sent_at = $2, failures = 0 WHERE id = $1")
            .bind(id)
            .bind(at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A delivery that failed after its retries (shown on the account page, so a dead device is seen).
    pub async fn push_failed(&self, id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE push_subscriptions SET failures = failures + 1 WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
