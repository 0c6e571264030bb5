//! Inserting new requests in batches (the insert queue's writer), with the abuse limits judged in
//! the same transaction.
use std::collections::HashMap;

use sqlx::AnyConnection;

use super::{Backend, Store, StoreError, StoreResult};
use crate::ciba::auth_request::AuthRequest;

/// The abuse limits checked in the same statement that inserts; 0 turns a limit off.
#[derive(Clone, Copy, Debug)]
pub struct InsertLimits {
    pub max_pending_per_approver: i64,
    pub max_requests_per_minute: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    Inserted,
    TooManyPending,
    TooManyPerMinute,
}

const MINUTE_MS: i64 = 60_000;

impl Store {
    /// Inserts pending requests in one transaction, refusing those over a limit. The batch costs a
    /// fixed number of statements whatever its size: the current counts for the batch's clients, then
    /// one multi-row INSERT of the accepted rows. Rows are judged in order, each counting the ones
    /// accepted before it. On SQLite the transaction takes the write lock first (BEGIN IMMEDIATE), so
    /// the counts cannot go stale before the insert.
    pub async fn insert_auth_requests(
        &self,
        rows: &[AuthRequest],
        limits: InsertLimits,
    ) -> StoreResult<Vec<InsertOutcome>> {
        assert!(
            rows.len() <= MAX_ROWS_PER_INSERT,
            "the insert queue batches at most {MAX_ROWS_PER_INSERT} rows"
        );
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        let shared = rows.iter().any(AuthRequest::is_shared);
        if limits.max_pending_per_approver == 0 && limits.max_requests_per_minute == 0 && !shared {
            // Nothing to check: the single INSERT statement is its own atomic transaction.
            insert_rows(self.pool().acquire().await?.as_mut(), self.backend(), rows).await?;
            return Ok(vec![InsertOutcome::Inserted; rows.len()]);
        }
        let mut tx = match self.backend() {
            Backend::Sqlite => self.pool().begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool().begin().await?,
        };
        let outcomes = LimitCounts::load(&mut tx, rows, first.created_at)
            .await?
            .judge(rows, limits);
        let accepted: Vec<AuthRequest> = rows
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| **o == InsertOutcome::Inserted)
            .map(|(r, _)| r.clone())
            .collect();
        if !accepted.is_empty() {
            insert_rows(&mut tx, self.backend(), &accepted).await?;
            insert_addressees(&mut tx, &accepted).await?;
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

/// Rows per INSERT statement: 18 parameters each stays far below both databases' limits, and each of
/// the (at most this many) statement shapes is prepared once per connection and then cached.
pub const MAX_ROWS_PER_INSERT: usize = 64;

async fn insert_rows(
    conn: &mut AnyConnection,
    backend: Backend,
    rows: &[AuthRequest],
) -> StoreResult<()> {
    let mut sql = String::from(
        "INSERT INTO auth_requests (id, client_id, approver_id, scope, binding_message, acr_values, \
         authorization_details, notification_token, dpop_jkt, action_text, target_text, created_at, expires_at, \
         interval_secs, group_id, policy, shared, escalate_at, status) VALUES ",
    );
    for i in 0..rows.len() {
        let n = i * 18;
        if i > 0 {
            sql.push_str(", ");
        }
        // SQLite binds `?` by position; its `$n` names cost a lookup per parameter.
        let params: Vec<String> = match backend {
            Backend::Sqlite => vec!["?".to_owned(); 18],
            Backend::Postgres => (1..=18).map(|p| format!("${}", n + p)).collect(),
        };
        sql.push_str(&format!("({}, 'pending')", params.join(", ")));
    }
    let mut query = sqlx::query(&sql);
    for row in rows {
        query = query
            .bind(&row.id)
            .bind(&row.client_id)
            .bind(&row.approver_id)
            .bind(&row.scope)
            .bind(&row.binding_message)
            .bind(&row.acr_values)
            .bind(&row.authorization_details)
            .bind(&row.notification_token)
            .bind(&row.dpop_jkt)
            .bind(&row.action.action)
            .bind(&row.action.target)
            .bind(row.created_at)
            .bind(row.expires_at)
            .bind(row.interval_secs)
            .bind(&row.group_id)
            .bind(
                row.rule
                    .as_ref()
                    .map(|r| serde_json::to_string(r).expect("a rule serialises")),
            )
            .bind(i64::from(row.shared))
            .bind(row.escalate_at);
    }
    query
        .execute(&mut *conn)
        .await
        .map_err(|e| StoreError::on_unique(e, "auth_req_id"))?;
    Ok(())
}

/// Who may decide each shared request of `rows`, copied in with it.
async fn insert_addressees(conn: &mut AnyConnection, rows: &[AuthRequest]) -> StoreResult<()> {
    for row in rows.iter().filter(|r| r.is_shared()) {
        for approver_id in &row.addressees {
            sqlx::query(
                "INSERT INTO request_addressees (auth_req_id, approver_id, on_behalf_of) \
                 VALUES ($1, $2, $3)",
            )
            .bind(&row.id)
            .bind(approver_id)
            .bind(row.on_behalf_of(approver_id))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Whose pending requests a row counts among: its approver's, or its group's.
fn addressee_key(row: &AuthRequest) -> String {
    row.approver_id
        .clone()
        .or_else(|| row.group_id.clone())
        .unwrap_or_default()
}

/// What the limits are judged against: pending requests per (approver, client) and requests made in
/// the last minute per client, for the clients in a batch.
struct LimitCounts {
    pending: HashMap<(String, String), i64>,
    recent: HashMap<String, i64>,
}

impl LimitCounts {
    async fn load(
        conn: &mut AnyConnection,
        rows: &[AuthRequest],
        now: i64,
    ) -> StoreResult<LimitCounts> {
        let mut clients: Vec<&str> = rows.iter().map(|r| r.client_id.as_str()).collect();
        clients.sort_unstable();
        clients.dedup();
        let list = (2..clients.len() + 2)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let pending_sql = format!(
            "SELECT COALESCE(approver_id, group_id), client_id, COUNT(*) FROM auth_requests \
             WHERE status IN ('pending', 'partly_approved') AND expires_at > $1 AND client_id IN ({list}) \
             GROUP BY COALESCE(approver_id, group_id), client_id"
        );
        let recent_sql = format!(
            "SELECT client_id, COUNT(*) FROM auth_requests WHERE created_at > $1 AND client_id IN ({list}) GROUP BY client_id"
        );
        let mut pending_query = sqlx::query_as::<_, (String, String, i64)>(&pending_sql).bind(now);
        let mut recent_query =
            sqlx::query_as::<_, (String, i64)>(&recent_sql).bind(now - MINUTE_MS);
        for client in &clients {
            pending_query = pending_query.bind(*client);
            recent_query = recent_query.bind(*client);
        }
        let pending = pending_query
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|(a, c, n)| ((a, c), n))
            .collect();
        let recent = recent_query
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
        Ok(LimitCounts { pending, recent })
    }

    fn judge(mut self, rows: &[AuthRequest], limits: InsertLimits) -> Vec<InsertOutcome> {
        rows.iter()
            .map(|row| {
                let pending = self
                    .pending
                    .entry((addressee_key(row), row.client_id.clone()))
                    .or_default();
                let recent = self.recent.entry(row.client_id.clone()).or_default();
                if limits.max_pending_per_approver > 0
                    && *pending >= limits.max_pending_per_approver
                {
                    InsertOutcome::TooManyPending
                } else if limits.max_requests_per_minute > 0
                    && *recent >= limits.max_requests_per_minute
                {
                    InsertOutcome::TooManyPerMinute
                } else {
                    *pending += 1;
                    *recent += 1;
                    InsertOutcome::Inserted
                }
            })
            .collect()
    }
}
