//! What the admin overview counts: requests per day by outcome, and how long decisions took.
use sqlx::FromRow;

use super::{Binds, Store, StoreResult};
use crate::clock::Millis;

/// One UTC day's requests (made that day) by where they stand now.
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct DayCounts {
    /// Days since the Unix epoch.
    pub day: i64,
    pub requests: i64,
    pub approved: i64,
    pub denied: i64,
    pub expired: i64,
}

/// One decision's timing.
#[derive(Clone, Debug, FromRow)]
pub struct DecisionTime {
    pub client_id: String,
    pub approver_id: String,
    /// 1 if approved, 0 if denied (an integer on both databases).
    pub approved: i64,
    /// From the request to the decision.
    pub millis: i64,
}

/// One agent's requests since some moment.
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct ClientCounts {
    pub client_id: String,
    pub requests: i64,
    pub approved: i64,
    pub denied: i64,
}

impl ClientCounts {
    pub fn none(client_id: &str) -> ClientCounts {
        ClientCounts {
            client_id: client_id.to_owned(),
            requests: 0,
            approved: 0,
            denied: 0,
        }
    }
}

impl Store {
    /// Requests made since `since`, counted per agent (only `client_id`'s, if given).
    pub async fn client_counts(
        &self,
        since: Millis,
        client_id: Option<&str>,
    ) -> StoreResult<Vec<ClientCounts>> {
        let mut binds = Binds::default();
        let mut sql = format!(
            "SELECT client_id, COUNT(*) AS requests, \
             SUM(CASE WHEN status IN ('approved', 'redeemed') THEN 1 ELSE 0 END) AS approved, \
             SUM(CASE WHEN status = 'denied' THEN 1 ELSE 0 END) AS denied \
             FROM auth_requests WHERE created_at >= {}",
            binds.int(since)
        );
        if let Some(client_id) = client_id {
            sql.push_str(&format!(" AND client_id = {}", binds.text(client_id)));
        }
        sql.push_str(" GROUP BY client_id");
        Ok(binds
            .bind_as(sqlx::query_as(&sql))
            .fetch_all(self.pool())
            .await?)
    }

    /// Requests made since `since`, counted per UTC day.
    pub async fn daily_counts(&self, since: Millis, now: Millis) -> StoreResult<Vec<DayCounts>> {
        Ok(sqlx::query_as(
            "SELECT created_at / 86400000 AS day, COUNT(*) AS requests, \
             SUM(CASE WHEN status IN ('approved', 'redeemed') THEN 1 ELSE 0 END) AS approved, \
             SUM(CASE WHEN status = 'denied' THEN 1 ELSE 0 END) AS denied, \
             SUM(CASE WHEN status IN ('pending', 'partly_approved') AND expires_at <= $1 THEN 1 ELSE 0 END) AS expired \
             FROM auth_requests WHERE created_at >= $2 GROUP BY created_at / 86400000 ORDER BY day",
        )
        .bind(now)
        .bind(since)
        .fetch_all(self.pool())
        .await?)
    }

    /// Every decision on a request made since `since`.
    pub async fn decision_times(&self, since: Millis) -> StoreResult<Vec<DecisionTime>> {
        Ok(sqlx::query_as(
            // A shared request's time is its decider's: whoever made its last record (the one
            // that settled it).
            "SELECT r.client_id, CASE WHEN r.shared = 0 THEN r.approver_id ELSE COALESCE(\
             (SELECT d.approver_id FROM decisions d WHERE d.auth_req_id = r.id ORDER BY d.seq DESC LIMIT 1), \
             '') END AS approver_id, \
             CASE WHEN r.status = 'denied' THEN 0 ELSE 1 END AS approved, \
             r.decided_at - r.created_at AS millis \
             FROM auth_requests r WHERE r.created_at >= $1 AND r.decided_at IS NOT NULL",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await?)
    }
}
