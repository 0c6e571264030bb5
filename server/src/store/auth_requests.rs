//! The `auth_requests` table: backchannel authentication requests and their decisions. Every state change
//! is a conditional UPDATE on the old state, so concurrent callers cannot both win.
use std::collections::HashMap;

use sqlx::{AnyConnection, FromRow};

use super::{Backend, Store, StoreError, StoreResult};
use crate::ciba::{
    action::parse_authorization_details,
    auth_request::{Approval, AuthRequest, State},
};

/// A request as the table holds it. Only this module reads `status`: everything else sees
/// `ciba::AuthRequest`. Tests and audits read rows to check what the database itself says.
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct AuthRequestRow {
    pub id: String,
    pub client_id: String,
    pub approver_id: String,
    pub scope: String,
    pub binding_message: Option<String>,
    pub acr_values: Option<String>,
    pub authorization_details: String,
    pub notification_token: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub interval_secs: i64,
    pub status: String,
    pub decided_at: Option<i64>,
    pub deny_reason: Option<String>,
    pub acr: Option<String>,
    pub amr: Option<String>,
    pub redeemed_at: Option<i64>,
}

const COLUMNS: &str = "id, client_id, approver_id, scope, binding_message, acr_values, authorization_details, \
    notification_token, created_at, expires_at, interval_secs, status, decided_at, deny_reason, acr, amr, \
    redeemed_at";

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

/// An access token as recorded at redemption.
#[derive(Clone, Debug)]
pub struct IssuedToken<'a> {
    pub jti: &'a str,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl AuthRequestRow {
    /// The domain's view of this row; a row no version of Countersign could have written is refused.
    pub fn into_request(self) -> StoreResult<AuthRequest> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("auth request {what}"));
        let action = parse_authorization_details(&self.authorization_details)
            .map_err(|_| corrupt("with unreadable authorization_details"))?;
        let approval = || -> StoreResult<Approval> {
            let amr = match &self.amr {
                Some(amr) => {
                    serde_json::from_str(amr).map_err(|_| corrupt("with unreadable amr"))?
                }
                None => Vec::new(),
            };
            Ok(Approval {
                decided_at: self
                    .decided_at
                    .ok_or_else(|| corrupt("approved without a time"))?,
                acr: self.acr.clone().unwrap_or_default(),
                amr,
            })
        };
        let state = match self.status.as_str() {
            "pending" => State::Pending,
            "approved" => State::Approved(approval()?),
            "denied" => State::Denied {
                decided_at: self
                    .decided_at
                    .ok_or_else(|| corrupt("denied without a time"))?,
                reason: self.deny_reason.clone(),
            },
            "redeemed" => State::Redeemed {
                approval: approval()?,
                redeemed_at: self
                    .redeemed_at
                    .ok_or_else(|| corrupt("redeemed without a time"))?,
            },
            _ => return Err(corrupt("with an unknown status")),
        };
        Ok(AuthRequest {
            id: self.id,
            client_id: self.client_id,
            approver_id: self.approver_id,
            scope: self.scope,
            binding_message: self.binding_message,
            acr_values: self.acr_values,
            action,
            authorization_details: self.authorization_details,
            notification_token: self.notification_token,
            created_at: self.created_at,
            expires_at: self.expires_at,
            interval_secs: self.interval_secs,
            state,
        })
    }
}

fn requests(rows: Vec<AuthRequestRow>) -> StoreResult<Vec<AuthRequest>> {
    rows.into_iter().map(AuthRequestRow::into_request).collect()
}

/// The columns a decision sets, from the state it leads to.
struct DecisionColumns {
    status: &'static str,
    decided_at: i64,
    deny_reason: Option<String>,
    acr: Option<String>,
    amr: Option<String>,
}

impl DecisionColumns {
    fn of(state: &State) -> DecisionColumns {
        match state {
            State::Approved(a) => DecisionColumns {
                status: "approved",
                decided_at: a.decided_at,
                deny_reason: None,
                acr: Some(a.acr.clone()),
                amr: Some(serde_json::to_string(&a.amr).expect("strings serialise")),
            },
            State::Denied { decided_at, reason } => DecisionColumns {
                status: "denied",
                decided_at: *decided_at,
                deny_reason: reason.clone(),
                acr: None,
                amr: None,
            },
            State::Pending | State::Redeemed { .. } => {
                unreachable!("a decision leads to Approved or Denied")
            }
        }
    }
}

/// What a decision changes: the request, from pending, to `state` (Approved or Denied), in the
/// transaction that appends its record.
pub(super) async fn apply_decision(
    conn: &mut AnyConnection,
    auth_req_id: &str,
    approver_id: &str,
    state: &State,
) -> StoreResult<bool> {
    let c = DecisionColumns::of(state);
    let done = sqlx::query(
        "UPDATE auth_requests SET status = $1, decided_at = $2, deny_reason = $3, acr = $4, amr = $5 \
         WHERE id = $6 AND approver_id = $7 AND status = 'pending' AND expires_at > $2",
    )
    .bind(c.status)
    .bind(c.decided_at)
    .bind(c.deny_reason)
    .bind(c.acr)
    .bind(c.amr)
    .bind(auth_req_id)
    .bind(approver_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
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
        if limits.max_pending_per_approver == 0 && limits.max_requests_per_minute == 0 {
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
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    pub async fn auth_request(&self, id: &str) -> StoreResult<Option<AuthRequest>> {
        self.auth_request_row(id)
            .await?
            .map(AuthRequestRow::into_request)
            .transpose()
    }

    /// The row as stored, for checks of what the database itself says.
    pub async fn auth_request_row(&self, id: &str) -> StoreResult<Option<AuthRequestRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM auth_requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Requests still pending and unexpired at `now`, to warm the poll cache at start.
    pub async fn pending_auth_requests(&self, now: i64) -> StoreResult<Vec<AuthRequest>> {
        requests(
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM auth_requests WHERE status = 'pending' AND expires_at > $1"
            ))
            .bind(now)
            .fetch_all(self.pool())
            .await?,
        )
    }

    /// Marks an approved request redeemed by `client_id` and records the access token `jti` issued for
    /// it, in one transaction; true for exactly one caller.
    pub async fn redeem_auth_request(
        &self,
        id: &str,
        client_id: &str,
        token: &IssuedToken<'_>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE auth_requests SET status = 'redeemed', redeemed_at = $1 \
             WHERE id = $2 AND client_id = $3 AND status = 'approved' AND expires_at > $1 \
             AND NOT EXISTS (SELECT 1 FROM issued_tokens WHERE auth_req_id = $2)",
        )
        .bind(token.issued_at)
        .bind(id)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("INSERT INTO issued_tokens (jti, auth_req_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token.jti)
            .bind(id)
            .bind(token.issued_at)
            .bind(token.expires_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::on_unique(e, "jti"))?;
        tx.commit().await?;
        Ok(true)
    }

    /// Revokes the tokens issued for a request (RFC 6749 §10.5: a replayed grant revokes them).
    pub async fn revoke_auth_request_tokens(&self, id: &str, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE issued_tokens SET revoked_at = $1 WHERE auth_req_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Whether the access token `jti` was issued here and not revoked.
    pub async fn token_is_live(&self, jti: &str) -> StoreResult<bool> {
        let row: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT revoked_at FROM issued_tokens WHERE jti = $1")
                .bind(jti)
                .fetch_optional(self.pool())
                .await?;
        Ok(matches!(row, Some((None,))))
    }
}

/// Rows per INSERT statement: 11 parameters each stays far below both databases' limits, and each of
/// the (at most this many) statement shapes is prepared once per connection and then cached.
pub const MAX_ROWS_PER_INSERT: usize = 64;

async fn insert_rows(
    conn: &mut AnyConnection,
    backend: Backend,
    rows: &[AuthRequest],
) -> StoreResult<()> {
    let mut sql = String::from(
        "INSERT INTO auth_requests (id, client_id, approver_id, scope, binding_message, acr_values, \
         authorization_details, notification_token, created_at, expires_at, interval_secs, status) VALUES ",
    );
    for i in 0..rows.len() {
        let n = i * 11;
        if i > 0 {
            sql.push_str(", ");
        }
        // SQLite binds `?` by position; its `$n` names cost a lookup per parameter.
        let params: Vec<String> = match backend {
            Backend::Sqlite => vec!["?".to_owned(); 11],
            Backend::Postgres => (1..=11).map(|p| format!("${}", n + p)).collect(),
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
            .bind(row.created_at)
            .bind(row.expires_at)
            .bind(row.interval_secs);
    }
    query
        .execute(&mut *conn)
        .await
        .map_err(|e| StoreError::on_unique(e, "auth_req_id"))?;
    Ok(())
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
            "SELECT approver_id, client_id, COUNT(*) FROM auth_requests \
             WHERE status = 'pending' AND expires_at > $1 AND client_id IN ({list}) GROUP BY approver_id, client_id"
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
                    .entry((row.approver_id.clone(), row.client_id.clone()))
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

impl Store {
    /// An approver's requests, newest first, with the requesting client's name. A row that cannot be
    /// read is left out (and logged) so one bad row does not hide the rest of the inbox.
    pub async fn approver_requests(
        &self,
        approver_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<(AuthRequest, String)>> {
        let columns: Vec<String> = COLUMNS
            .split(',')
            .map(|c| format!("r.{}", c.trim()))
            .collect();
        let rows: Vec<ApproverRequest> = sqlx::query_as(&format!(
            "SELECT {}, c.name AS client_name FROM auth_requests r JOIN clients c ON c.id = r.client_id \
             WHERE r.approver_id = $1 ORDER BY r.created_at DESC, r.id DESC LIMIT $2",
            columns.join(", ")
        ))
        .bind(approver_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| match r.request.into_request() {
                Ok(request) => Some((request, r.client_name)),
                Err(e) => {
                    tracing::warn!(error = %e, "an unreadable request left out of an inbox");
                    None
                }
            })
            .collect())
    }

    /// The approver's requests made in one millisecond (to resolve a request page reference).
    pub async fn approver_requests_at(
        &self,
        approver_id: &str,
        created_at: i64,
    ) -> StoreResult<Vec<AuthRequest>> {
        requests(
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM auth_requests WHERE approver_id = $1 AND created_at = $2"
            ))
            .bind(approver_id)
            .bind(created_at)
            .fetch_all(self.pool())
            .await?,
        )
    }

    /// When the approver's next pending request runs out of time, after `now`: their inbox changes
    /// then without any event.
    pub async fn next_pending_expiry(
        &self,
        approver_id: &str,
        now: i64,
    ) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(expires_at) FROM auth_requests \
             WHERE approver_id = $1 AND status = 'pending' AND expires_at > $2",
        )
        .bind(approver_id)
        .bind(now)
        .fetch_one(self.pool())
        .await?)
    }

    /// Tells every instance (PostgreSQL NOTIFY) that the approver's inbox changed.
    pub async fn notify_inbox(&self, approver_id: &str) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(crate::ciba::pending::INBOX_CHANNEL)
            .bind(approver_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Wrong user_code entries on the request page for this request.
    pub async fn user_code_failures(&self, id: &str) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT user_code_failures FROM auth_requests WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?
                .unwrap_or(0),
        )
    }

    /// Takes one of the `limit` user_code attempts of a request before the code is compared, so
    /// simultaneous guesses cannot all slip under the limit; None when none is left.
    pub async fn reserve_user_code_attempt(
        &self,
        id: &str,
        limit: i64,
    ) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "UPDATE auth_requests SET user_code_failures = user_code_failures + 1 \
             WHERE id = $1 AND user_code_failures < $2 RETURNING user_code_failures",
        )
        .bind(id)
        .bind(limit)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Gives back the attempt a correct user_code took.
    pub async fn refund_user_code_attempt(&self, id: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE auth_requests SET user_code_failures = user_code_failures - 1 \
             WHERE id = $1 AND user_code_failures > 0",
        )
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

#[derive(FromRow)]
struct ApproverRequest {
    #[sqlx(flatten)]
    request: AuthRequestRow,
    client_name: String,
}
