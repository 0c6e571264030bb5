//! The `decisions` table: the append-only, hash-chained record of every decision. A decision is
//! recorded in the same transaction that changes the request's status, so the token endpoint never
//! answers from a decision that has no record.
use sqlx::FromRow;

use super::{auth_requests::apply_decision, Backend, Binds, Store, StoreResult};
use crate::ciba::auth_request::{AuthRequest, State};

#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct DecisionRow {
    pub seq: i64,
    pub auth_req_id: String,
    pub request_digest: String,
    pub decision: String,
    pub reason: Option<String>,
    pub approver_id: String,
    /// The group the request was addressed to, when it was.
    pub group_id: Option<String>,
    /// The approver a delegate decided for.
    pub on_behalf_of: Option<String>,
    pub credential_id: String,
    pub authenticator_data: String,
    pub client_data_json: String,
    pub signature: String,
    pub nonce: String,
    /// The passkey's COSE public key (webauthn-rs JSON); None in records made before it was kept.
    pub credential_public_key: Option<String>,
    pub decided_at: i64,
    pub prev_hash: String,
    pub record_hash: String,
    pub jws: String,
}

const COLUMNS: &str = "seq, auth_req_id, request_digest, decision, reason, approver_id, group_id, \
    on_behalf_of, credential_id, authenticator_data, client_data_json, signature, nonce, credential_public_key, decided_at, \
    prev_hash, record_hash, jws";

/// The previous hash of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl Store {
    /// Moves the pending request to `state` and appends the decision record that `seal` builds from
    /// the previous record's hash (returning the new row without `seq`), and when `notify_client`
    /// queues the client's notification (CIBA ping), all in one transaction. The
    /// chain is serialised: SQLite takes the write lock up front, PostgreSQL an advisory lock.
    #[allow(clippy::too_many_arguments)]
    pub async fn append_decision<F>(
        &self,
        request: &AuthRequest,
        approver_id: &str,
        state: &State,
        now: i64,
        notify_client: bool,
        seal: F,
    ) -> StoreResult<Option<DecisionRow>>
    where
        F: FnOnce(&str) -> StoreResult<DecisionRow>,
    {
        let auth_req_id = request.id.as_str();
        let mut tx = self
            .begin_chained(super::key_registry::DECISION_CHAIN_LOCK)
            .await?;
        if !apply_decision(&mut tx, request, approver_id, state, now).await? {
            return Ok(None);
        }
        let prev: Option<(String,)> =
            sqlx::query_as("SELECT record_hash FROM decisions ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let row = seal(prev.as_ref().map_or(GENESIS_HASH, |(h,)| h.as_str()))?;
        let (seq,): (i64,) = sqlx::query_as(
            "INSERT INTO decisions (auth_req_id, request_digest, decision, reason, approver_id, group_id, \
             on_behalf_of, credential_id, authenticator_data, client_data_json, signature, nonce, \
             credential_public_key, decided_at, prev_hash, record_hash, jws) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             RETURNING seq",
        )
        .bind(&row.auth_req_id)
        .bind(&row.request_digest)
        .bind(&row.decision)
        .bind(&row.reason)
        .bind(&row.approver_id)
        .bind(&row.group_id)
        .bind(&row.on_behalf_of)
        .bind(&row.credential_id)
        .bind(&row.authenticator_data)
        .bind(&row.client_data_json)
        .bind(&row.signature)
        .bind(&row.nonce)
        .bind(&row.credential_public_key)
        .bind(row.decided_at)
        .bind(&row.prev_hash)
        .bind(&row.record_hash)
        .bind(&row.jws)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| super::StoreError::on_unique(e, "approver's decision"))?;
        if notify_client {
            super::outbox::queue_client_notification(&mut tx, auth_req_id, row.decided_at).await?;
        }
        if self.backend() == Backend::Postgres {
            // Every addressee's inbox changes (one name for a request of one approver).
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(crate::ciba::pending::DECISION_CHANNEL)
                .bind(format!("{auth_req_id} {}", request.addressees.join(" ")))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Some(DecisionRow { seq, ..row }))
    }

    /// The hash of the record before record `seq`, if there is one.
    pub async fn record_hash_before(&self, seq: i64) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT record_hash FROM decisions WHERE seq < $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(seq)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Every decision record, oldest first.
    pub async fn decisions(&self) -> StoreResult<Vec<DecisionRow>> {
        Ok(
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM decisions ORDER BY seq"))
                .fetch_all(self.pool())
                .await?,
        )
    }
}

/// Which decision records an evidence bundle holds: those of requests made in a time range, by an
/// approver, from an agent. Empty, it selects every record.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Requests made at or after (Unix ms).
    pub from: Option<i64>,
    /// Requests made before (Unix ms).
    pub until: Option<i64>,
    pub approver_id: Option<String>,
    pub client_id: Option<String>,
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.from.is_none()
            && self.until.is_none()
            && self.approver_id.is_none()
            && self.client_id.is_none()
    }

    /// The selection as JSON, for the bundle to say what it holds.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "from": self.from, "until": self.until,
            "approver": self.approver_id, "agent": self.client_id,
        })
    }

    /// The WHERE clause over `auth_requests r` and its values.
    fn condition(&self) -> (String, Binds) {
        let mut binds = Binds::default();
        let mut conditions = vec!["1 = 1".to_owned()];
        if let Some(from) = self.from {
            conditions.push(format!("r.created_at >= {}", binds.int(from)));
        }
        if let Some(until) = self.until {
            conditions.push(format!("r.created_at < {}", binds.int(until)));
        }
        if let Some(approver) = &self.approver_id {
            conditions.push(format!("r.approver_id = {}", binds.text(approver)));
        }
        if let Some(client) = &self.client_id {
            conditions.push(format!("r.client_id = {}", binds.text(client)));
        }
        (conditions.join(" AND "), binds)
    }
}

/// `columns` (a comma-separated list) each prefixed with the table alias `alias`.
pub(super) fn qualified(columns: &str, alias: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// The decision records `selection` picks, in chain order.
    pub async fn decisions_selected(&self, selection: &Selection) -> StoreResult<Vec<DecisionRow>> {
        let (condition, binds) = selection.condition();
        let sql = format!(
            "SELECT {} FROM decisions d JOIN auth_requests r ON r.id = d.auth_req_id \
             WHERE {condition} ORDER BY d.seq",
            qualified(COLUMNS, "d")
        );
        Ok(binds
            .bind_as(sqlx::query_as(&sql))
            .fetch_all(self.pool())
            .await?)
    }

    /// The requests those records decided.
    pub async fn requests_decided(&self, selection: &Selection) -> StoreResult<Vec<AuthRequest>> {
        let (condition, binds) = selection.condition();
        let sql = format!(
            "SELECT {} FROM auth_requests r WHERE {condition} \
             AND EXISTS (SELECT 1 FROM decisions d WHERE d.auth_req_id = r.id)",
            qualified(super::auth_requests::COLUMNS, "r")
        );
        let requests = binds
            .bind_as(sqlx::query_as::<_, super::auth_requests::AuthRequestRow>(
                &sql,
            ))
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(super::auth_requests::AuthRequestRow::into_request)
            .collect::<StoreResult<Vec<_>>>()?;
        self.with_parties(requests).await
    }
}

/// What the audit compares with the decision records: an `id` that ought to have one, what makes it
/// need one, and the record's decision, if any.
#[derive(Clone, Debug, FromRow)]
pub struct CoveredRow {
    pub auth_req_id: String,
    state: String,
    pub decision: Option<String>,
}

/// Why a request needs a decision record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Covered {
    /// Marked approved (or redeemed).
    Approval,
    /// Marked denied.
    Denial,
    /// An access token was issued for it.
    Token,
}

impl CoveredRow {
    pub fn covered(&self) -> Covered {
        match self.state.as_str() {
            "token" => Covered::Token,
            "denied" => Covered::Denial,
            _ => Covered::Approval,
        }
    }
}

impl Store {
    /// The decision records of one request, oldest first: one, or one per approver of a quorum.
    pub async fn decisions_for(&self, auth_req_id: &str) -> StoreResult<Vec<DecisionRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM decisions WHERE auth_req_id = $1 ORDER BY seq"
        ))
        .bind(auth_req_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Every decided request and every issued token, each with the decision recorded for its request.
    pub async fn decision_coverage(&self) -> StoreResult<Vec<CoveredRow>> {
        Ok(sqlx::query_as(
            // A quorum's request has a record per approver: the last one is what settled it (a
            // denial ends it at once), so it is the one compared with the status.
            "SELECT r.id AS auth_req_id, r.status AS state, d.decision AS decision \
             FROM auth_requests r LEFT JOIN decisions d ON d.seq = \
             (SELECT MAX(seq) FROM decisions WHERE auth_req_id = r.id) \
             WHERE r.status <> 'pending' \
             UNION ALL \
             SELECT t.auth_req_id, 'token' AS state, d.decision AS decision \
             FROM issued_tokens t LEFT JOIN decisions d ON d.seq = \
             (SELECT MAX(seq) FROM decisions WHERE auth_req_id = t.auth_req_id) \
             ORDER BY auth_req_id",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Records, once per request, that its approval failed verification at redemption; true the
    /// first time.
    pub async fn alert_consent(
        &self,
        auth_req_id: &str,
        problem: &str,
        found_at: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO consent_alerts (auth_req_id, problem, found_at) VALUES ($1, $2, $3) \
             ON CONFLICT (auth_req_id) DO NOTHING",
        )
        .bind(auth_req_id)
        .bind(problem)
        .bind(found_at)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The consent alerts, oldest first: (auth_req_id, problem).
    pub async fn consent_alerts(&self) -> StoreResult<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT auth_req_id, problem FROM consent_alerts ORDER BY found_at, auth_req_id",
        )
        .fetch_all(self.pool())
        .await?)
    }
}
