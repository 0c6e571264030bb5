//! The admin history: every request with its client, approver and delivery, newest first, filtered,
//! a page at a time. Pages follow a keyset cursor (the last row's `created_at` and `id`), so a deep
//! page costs what the first does: no OFFSET scan.
use sqlx::FromRow;

use super::{Binds, Store, StoreResult};
use crate::clock::Millis;

/// Where a request stands, as the history filters it. Expiry is derived from the clock, as
/// everywhere else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryStatus {
    Pending,
    /// Approved, whether or not the tokens were collected yet.
    Approved,
    Denied,
    Expired,
}

#[derive(Clone, Debug, Default)]
pub struct HistoryFilter {
    pub status: Option<HistoryStatus>,
    pub client_id: Option<String>,
    pub approver_id: Option<String>,
    /// Case-insensitive substring of the action or the target.
    pub text: Option<String>,
    /// Created at or after (Unix ms).
    pub from: Option<Millis>,
    /// Created before (Unix ms).
    pub until: Option<Millis>,
}

/// The last row of the previous page: the next page starts after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: Millis,
    pub id: String,
}

#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct HistoryRow {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    pub delivery_mode: String,
    pub approver_id: String,
    pub approver_name: String,
    pub approver_email: String,
    pub action_text: String,
    pub target_text: String,
    pub status: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    pub redeemed_at: Option<i64>,
    /// The ping or push delivery to the client, if one was queued.
    pub delivered_at: Option<i64>,
    pub delivery_attempts: Option<i64>,
    pub delivery_error: Option<String>,
}

const SELECT: &str = "SELECT r.id, r.client_id, c.name AS client_name, c.delivery_mode, \
    r.approver_id, a.name AS approver_name, a.email AS approver_email, r.action_text, r.target_text, \
    r.status, r.created_at, r.expires_at, r.decided_at, r.redeemed_at, o.done_at AS delivered_at, \
    o.attempts AS delivery_attempts, o.last_error AS delivery_error \
    FROM auth_requests r \
    JOIN clients c ON c.id = r.client_id \
    JOIN approvers a ON a.id = r.approver_id \
    LEFT JOIN notification_outbox o ON o.auth_req_id = r.id AND o.channel = 'client'";

impl Store {
    /// Up to `limit` requests matching `filter`, newest first, after `after` if given.
    pub async fn history(
        &self,
        filter: &HistoryFilter,
        after: Option<&Cursor>,
        limit: i64,
        now: Millis,
    ) -> StoreResult<Vec<HistoryRow>> {
        let (sql, binds) = history_query(filter, after, limit, now);
        Ok(binds
            .bind_as(sqlx::query_as::<_, HistoryRow>(&sql))
            .fetch_all(self.pool())
            .await?)
    }

    /// The database's plan for [`Store::history`] with these arguments, one line per step.
    pub async fn history_plan(
        &self,
        filter: &HistoryFilter,
        after: Option<&Cursor>,
        limit: i64,
        now: Millis,
    ) -> StoreResult<Vec<String>> {
        let (sql, binds) = history_query(filter, after, limit, now);
        let explain = match self.backend() {
            super::Backend::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
            super::Backend::Postgres => format!("EXPLAIN {sql}"),
        };
        let rows = binds
            .bind(sqlx::query(&explain))
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                use sqlx::Row;
                // SQLite: (id, parent, notused, detail); PostgreSQL: one text column.
                let last = row.len() - 1;
                row.try_get::<String, _>(last).unwrap_or_default()
            })
            .collect())
    }
}

/// The SQL of the history query and its values, in placeholder order.
fn history_query(
    filter: &HistoryFilter,
    after: Option<&Cursor>,
    limit: i64,
    now: Millis,
) -> (String, Binds) {
    let mut conditions: Vec<String> = Vec::new();
    let mut binds = Binds::default();
    match filter.status {
        None => {}
        Some(HistoryStatus::Pending) => conditions.push(format!(
            "r.status = 'pending' AND r.expires_at > {}",
            binds.int(now)
        )),
        Some(HistoryStatus::Expired) => conditions.push(format!(
            "r.status = 'pending' AND r.expires_at <= {}",
            binds.int(now)
        )),
        Some(HistoryStatus::Approved) => {
            conditions.push("r.status IN ('approved', 'redeemed')".into());
        }
        Some(HistoryStatus::Denied) => conditions.push("r.status = 'denied'".into()),
    }
    if let Some(client_id) = &filter.client_id {
        conditions.push(format!("r.client_id = {}", binds.text(client_id)));
    }
    if let Some(approver_id) = &filter.approver_id {
        conditions.push(format!("r.approver_id = {}", binds.text(approver_id)));
    }
    if let Some(text) = &filter.text {
        let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
        let (a, t) = (binds.text(pattern.clone()), binds.text(pattern));
        conditions.push(format!(
            "(LOWER(r.action_text) LIKE {a} ESCAPE '\\' OR LOWER(r.target_text) LIKE {t} ESCAPE '\\')"
        ));
    }
    if let Some(from) = filter.from {
        conditions.push(format!("r.created_at >= {}", binds.int(from)));
    }
    if let Some(until) = filter.until {
        conditions.push(format!("r.created_at < {}", binds.int(until)));
    }
    if let Some(cursor) = after {
        let (at, id) = (binds.int(cursor.created_at), binds.text(&cursor.id));
        // A row value: both databases seek the (created_at, id) index to the cursor, where the
        // equivalent OR would scan every newer row first.
        conditions.push(format!("(r.created_at, r.id) < ({at}, {id})"));
    }
    let limit = binds.int(limit);
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!("{SELECT} {filter} ORDER BY r.created_at DESC, r.id DESC LIMIT {limit}");
    (sql, binds)
}

impl Store {
    /// One request as the history lists it.
    pub async fn history_row(&self, id: &str) -> StoreResult<Option<HistoryRow>> {
        Ok(sqlx::query_as(&format!("{SELECT} WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// The ids of the requests made in millisecond `at` (page references name one of them).
    pub async fn request_ids_at(&self, at: Millis) -> StoreResult<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM auth_requests WHERE created_at = $1")
                .bind(at)
                .fetch_all(self.pool())
                .await?,
        )
    }
}

/// `text` matched literally inside a LIKE pattern escaped with `\`.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
