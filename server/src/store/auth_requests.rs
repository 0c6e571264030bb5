//! The `auth_requests` table: backchannel authentication requests and their decisions. Every state change
//! is a conditional UPDATE on the old state, so concurrent callers cannot both win.
use sqlx::FromRow;

use super::{Backend, Store, StoreError, StoreResult};

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
    pub access_token_jti: Option<String>,
    pub tokens_revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, client_id, approver_id, scope, binding_message, acr_values, authorization_details, \
    notification_token, created_at, expires_at, interval_secs, status, decided_at, deny_reason, acr, amr, \
    redeemed_at, access_token_jti, tokens_revoked_at";

/// The abuse limits checked in the same statement that inserts; 0 turns a limit off.
#[derive(Clone, Copy, Debug)]
pub struct InsertLimits {
    pub max_pending_per_approver: i64,
    pub max_requests_per_minute: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    Inserted,
    TooManyPending,
    TooManyPerMinute,
}

/// What a decision sets on a pending request.
#[derive(Clone, Debug)]
pub struct DecisionUpdate<'a> {
    pub status: &'a str,
    pub decided_at: i64,
    pub deny_reason: Option<&'a str>,
    pub acr: Option<&'a str>,
    pub amr: Option<&'a str>,
}

const MINUTE_MS: i64 = 60_000;

impl Store {
    /// Inserts a pending request unless it would exceed a limit. The limit checks and the insert are one
    /// statement, so a burst of concurrent requests cannot all slip under the limit on SQLite.
    pub async fn insert_auth_request(
        &self,
        row: &AuthRequestRow,
        limits: InsertLimits,
    ) -> StoreResult<InsertOutcome> {
        let mut sql = String::from(
            "INSERT INTO auth_requests (id, client_id, approver_id, scope, binding_message, acr_values, \
             authorization_details, notification_token, created_at, expires_at, interval_secs, status) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending'",
        );
        let limited = limits.max_pending_per_approver > 0 || limits.max_requests_per_minute > 0;
        if limited {
            sql.push_str(
                " WHERE ($12 = 0 OR (SELECT COUNT(*) FROM auth_requests WHERE approver_id = $3 \
                 AND client_id = $2 AND status = 'pending' AND expires_at > $9) < $12) \
                 AND ($13 = 0 OR (SELECT COUNT(*) FROM auth_requests WHERE client_id = $2 \
                 AND created_at > $9 - $14) < $13)",
            );
        }
        let mut query = sqlx::query(&sql)
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
        if limited {
            query = query
                .bind(limits.max_pending_per_approver)
                .bind(limits.max_requests_per_minute)
                .bind(MINUTE_MS);
        }
        let done = query
            .execute(self.pool())
            .await
            .map_err(|e| StoreError::on_unique(e, "auth_req_id"))?;
        if done.rows_affected() == 1 {
            return Ok(InsertOutcome::Inserted);
        }
        // Refused: find which limit, for a precise error (rare path, so a second query is fine).
        let (pending,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM auth_requests WHERE approver_id = $1 AND client_id = $2 AND status = 'pending' AND expires_at > $3",
        )
        .bind(&row.approver_id)
        .bind(&row.client_id)
        .bind(row.created_at)
        .fetch_one(self.pool())
        .await?;
        if limits.max_pending_per_approver > 0 && pending >= limits.max_pending_per_approver {
            Ok(InsertOutcome::TooManyPending)
        } else {
            Ok(InsertOutcome::TooManyPerMinute)
        }
    }

    pub async fn auth_request(&self, id: &str) -> StoreResult<Option<AuthRequestRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM auth_requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Requests still pending and unexpired at `now`, to warm the poll cache at start.
    pub async fn pending_auth_requests(&self, now: i64) -> StoreResult<Vec<AuthRequestRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM auth_requests WHERE status = 'pending' AND expires_at > $1"
        ))
        .bind(now)
        .fetch_all(self.pool())
        .await?)
    }

    /// Records a decision if the request is still pending, unexpired and addressed to `approver_id`.
    /// On PostgreSQL the same transaction notifies other instances, whose poll caches then reload it.
    pub async fn decide_auth_request(
        &self,
        id: &str,
        approver_id: &str,
        update: &DecisionUpdate<'_>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE auth_requests SET status = $1, decided_at = $2, deny_reason = $3, acr = $4, amr = $5 \
             WHERE id = $6 AND approver_id = $7 AND status = 'pending' AND expires_at > $2",
        )
        .bind(update.status)
        .bind(update.decided_at)
        .bind(update.deny_reason)
        .bind(update.acr)
        .bind(update.amr)
        .bind(id)
        .bind(approver_id)
        .execute(&mut *tx)
        .await?;
        let decided = done.rows_affected() == 1;
        if decided && self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(crate::ciba::pending::DECISION_CHANNEL)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(decided)
    }

    /// Marks an approved request redeemed by `client_id`; true for exactly one caller.
    pub async fn redeem_auth_request(
        &self,
        id: &str,
        client_id: &str,
        jti: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE auth_requests SET status = 'redeemed', redeemed_at = $1, access_token_jti = $2 \
             WHERE id = $3 AND client_id = $4 AND status = 'approved' AND expires_at > $1",
        )
        .bind(now)
        .bind(jti)
        .bind(id)
        .bind(client_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes the tokens issued for a redeemed request (RFC 6749 §10.5: a replayed grant revokes them).
    pub async fn revoke_auth_request_tokens(&self, id: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE auth_requests SET tokens_revoked_at = $1 WHERE id = $2 AND status = 'redeemed' AND tokens_revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The request whose redemption minted the access token `jti`.
    pub async fn auth_request_by_token(&self, jti: &str) -> StoreResult<Option<AuthRequestRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM auth_requests WHERE access_token_jti = $1"
        ))
        .bind(jti)
        .fetch_optional(self.pool())
        .await?)
    }
}
