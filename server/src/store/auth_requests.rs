//! The `auth_requests` table: requests read as `ciba::AuthRequest`, and their state changes. Every
//! state change is a conditional UPDATE on the old state, so concurrent callers cannot both win. New
//! requests are written by `request_inserts`.
use sqlx::{AnyConnection, FromRow};

use super::{Store, StoreError, StoreResult};
use crate::ciba::{
    action::parse_authorization_details,
    auth_request::{Approval, AuthRequest, Stage, State},
    quorum::Rule,
};

/// A request as the table holds it. Only this module reads `status`: everything else sees
/// `ciba::AuthRequest`. Tests and audits read rows to check what the database itself says.
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct AuthRequestRow {
    pub id: String,
    pub client_id: String,
    pub approver_id: Option<String>,
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
    pub user_code_failures: i64,
    pub dpop_jkt: Option<String>,
    pub group_id: Option<String>,
    /// The rule in force (`quorum::Rule` as JSON), when a policy governs the request.
    pub policy: Option<String>,
    /// Approvals recorded so far.
    pub approvals: i64,
    /// 1 when its deciders are its `request_addressees` rows.
    pub shared: i64,
    pub escalate_at: Option<i64>,
    pub escalated_at: Option<i64>,
}

pub(super) const COLUMNS: &str = "id, client_id, approver_id, scope, binding_message, acr_values, authorization_details, \
    notification_token, created_at, expires_at, interval_secs, status, decided_at, deny_reason, acr, amr, \
    redeemed_at, user_code_failures, dpop_jkt, group_id, policy, approvals, shared, escalate_at, \
    escalated_at";

/// The condition, over `auth_requests` aliased `r`, that the request is addressed to the approver
/// bound as `$param`: named alone, or among the people copied into a shared request.
pub(super) fn addressed_to(param: &str) -> String {
    format!(
        "((r.approver_id = {param} AND r.shared = 0) \
         OR r.id IN (SELECT x.auth_req_id FROM request_addressees x WHERE x.approver_id = {param}))"
    )
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
        let stage = Stage::parse(&self.status).ok_or_else(|| corrupt("with an unknown status"))?;
        let rule: Option<Rule> = match &self.policy {
            Some(json) => {
                Some(serde_json::from_str(json).map_err(|_| corrupt("with an unreadable policy"))?)
            }
            None => None,
        };
        if self.approver_id.is_none() && self.group_id.is_none() {
            return Err(corrupt("addressed to nobody"));
        }
        let state = match stage {
            Stage::Pending => State::Pending,
            Stage::PartlyApproved => State::PartlyApproved {
                approvals: self.approvals,
            },
            Stage::Approved => State::Approved(approval()?),
            Stage::Denied => State::Denied {
                decided_at: self
                    .decided_at
                    .ok_or_else(|| corrupt("denied without a time"))?,
                reason: self.deny_reason.clone(),
            },
            Stage::Redeemed => State::Redeemed {
                approval: approval()?,
                redeemed_at: self
                    .redeemed_at
                    .ok_or_else(|| corrupt("redeemed without a time"))?,
            },
        };
        // A shared request's addressees are read beside it (`Store::with_parties`).
        let shared = self.shared != 0;
        Ok(AuthRequest {
            id: self.id,
            client_id: self.client_id,
            addressees: match (&self.approver_id, shared) {
                (Some(approver), false) => vec![approver.clone()],
                _ => Vec::new(),
            },
            approved_by: Vec::new(),
            on_behalf: Vec::new(),
            shared,
            escalate_at: self.escalate_at,
            escalated_at: self.escalated_at,
            approver_id: self.approver_id,
            group_id: self.group_id,
            rule,
            scope: self.scope,
            binding_message: self.binding_message,
            acr_values: self.acr_values,
            action,
            authorization_details: self.authorization_details,
            notification_token: self.notification_token,
            dpop_jkt: self.dpop_jkt,
            created_at: self.created_at,
            expires_at: self.expires_at,
            interval_secs: self.interval_secs,
            user_code_failures: self.user_code_failures,
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
    decided_at: Option<i64>,
    deny_reason: Option<String>,
    acr: Option<String>,
    amr: Option<String>,
    approvals: i64,
}

impl DecisionColumns {
    fn of(state: &State) -> DecisionColumns {
        let undecided = |status, approvals| DecisionColumns {
            status,
            decided_at: None,
            deny_reason: None,
            acr: None,
            amr: None,
            approvals,
        };
        match state {
            State::Approved(a) => DecisionColumns {
                decided_at: Some(a.decided_at),
                acr: Some(a.acr.clone()),
                amr: Some(serde_json::to_string(&a.amr).expect("strings serialise")),
                ..undecided("approved", 0)
            },
            State::PartlyApproved { approvals } => undecided("partly_approved", *approvals),
            State::Denied { decided_at, reason } => DecisionColumns {
                decided_at: Some(*decided_at),
                deny_reason: reason.clone(),
                ..undecided("denied", 0)
            },
            State::Pending | State::Redeemed { .. } => {
                unreachable!("a decision leads to PartlyApproved, Approved or Denied")
            }
        }
    }
}

/// What a decision by `approver_id` changes: the request, from `from` (open, with that many
/// approvals), to `state`, in the transaction that appends its record; false when the request is no
/// longer as it was read (another decision came first) or is not addressed to them.
pub(super) async fn apply_decision(
    conn: &mut AnyConnection,
    request: &AuthRequest,
    approver_id: &str,
    state: &State,
    now: i64,
) -> StoreResult<bool> {
    let c = DecisionColumns::of(state);
    // A count of approvals in an approved row is the rule's: the column keeps the tally so far.
    let approvals = match state {
        State::Approved(_) => request.approvals_needed(),
        _ => c.approvals,
    };
    let done = sqlx::query(&format!(
        "UPDATE auth_requests AS r SET status = $1, decided_at = $2, deny_reason = $3, acr = $4, \
         amr = $5, approvals = $6 \
         WHERE r.id = $7 AND r.status IN ('pending', 'partly_approved') AND r.approvals = $8 \
         AND r.expires_at > $9 AND {}",
        addressed_to("$10")
    ))
    .bind(c.status)
    .bind(c.decided_at)
    .bind(c.deny_reason)
    .bind(c.acr)
    .bind(c.amr)
    .bind(approvals)
    .bind(&request.id)
    .bind(request.approvals())
    .bind(now)
    .bind(approver_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

impl Store {
    pub async fn auth_request(&self, id: &str) -> StoreResult<Option<AuthRequest>> {
        let Some(request) = self
            .auth_request_row(id)
            .await?
            .map(AuthRequestRow::into_request)
            .transpose()?
        else {
            return Ok(None);
        };
        Ok(self.with_parties(vec![request]).await?.pop())
    }

    /// Fills in who may decide each shared request of `requests` and who has approved it: two
    /// queries for the lot, none when no request is shared.
    pub(super) async fn with_parties(
        &self,
        mut requests: Vec<AuthRequest>,
    ) -> StoreResult<Vec<AuthRequest>> {
        let shared: Vec<&str> = requests
            .iter()
            .filter(|r| r.is_shared())
            .map(|r| r.id.as_str())
            .collect();
        if shared.is_empty() {
            return Ok(requests);
        }
        let list = (1..=shared.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let addressees_sql = format!(
            "SELECT auth_req_id, approver_id, on_behalf_of FROM request_addressees \
             WHERE auth_req_id IN ({list}) ORDER BY auth_req_id, approver_id"
        );
        let approved_sql = format!(
            "SELECT auth_req_id, approver_id FROM decisions WHERE auth_req_id IN ({list}) \
             AND decision = 'approve' ORDER BY seq"
        );
        let mut addressees = sqlx::query_as::<_, (String, String, Option<String>)>(&addressees_sql);
        let mut approved = sqlx::query_as::<_, (String, String)>(&approved_sql);
        for id in &shared {
            addressees = addressees.bind(*id);
            approved = approved.bind(*id);
        }
        let addressees = addressees.fetch_all(self.pool()).await?;
        let approved = approved.fetch_all(self.pool()).await?;
        for request in requests.iter_mut().filter(|r| r.is_shared()) {
            let of = |rows: &[(String, String)]| -> Vec<String> {
                rows.iter()
                    .filter(|(id, _)| *id == request.id)
                    .map(|(_, a)| a.clone())
                    .collect()
            };
            let mine = addressees.iter().filter(|(id, _, _)| *id == request.id);
            request.addressees = mine.clone().map(|(_, a, _)| a.clone()).collect();
            request.on_behalf = mine
                .filter_map(|(_, a, p)| p.as_ref().map(|p| (a.clone(), p.clone())))
                .collect();
            request.approved_by = of(&approved);
        }
        Ok(requests)
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

    /// Open requests whose escalation is due at `now` and has not happened (at most 100).
    pub async fn escalations_due(&self, now: i64) -> StoreResult<Vec<AuthRequest>> {
        let rows = requests(
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM auth_requests WHERE escalate_at IS NOT NULL \
                 AND escalated_at IS NULL AND escalate_at <= $1 AND expires_at > $1 \
                 AND status IN ('pending', 'partly_approved') ORDER BY escalate_at LIMIT 100"
            ))
            .bind(now)
            .fetch_all(self.pool())
            .await?,
        )?;
        self.with_parties(rows).await
    }

    /// Escalates request `id` once: marks it escalated at `now` and adds `added` (approver, and
    /// whom they stand in for) to its addressees, in one transaction; false when it was escalated
    /// already or is no longer open.
    pub async fn escalate(
        &self,
        id: &str,
        added: &[(String, Option<String>)],
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE auth_requests SET escalated_at = $2 WHERE id = $1 AND escalated_at IS NULL \
             AND status IN ('pending', 'partly_approved') AND expires_at > $2",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        for (approver_id, on_behalf_of) in added {
            sqlx::query(
                "INSERT INTO request_addressees (auth_req_id, approver_id, on_behalf_of) \
                 VALUES ($1, $2, $3) ON CONFLICT (auth_req_id, approver_id) DO NOTHING",
            )
            .bind(id)
            .bind(approver_id)
            .bind(on_behalf_of)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Requests still pending and unexpired at `now`, to warm the poll cache at start.
    pub async fn pending_auth_requests(&self, now: i64) -> StoreResult<Vec<AuthRequest>> {
        requests(
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM auth_requests \
                 WHERE status IN ('pending', 'partly_approved') AND expires_at > $1"
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
        record_issued_token(&mut tx, id, token).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Push mode's new issue after a failed delivery: the request stays redeemed, the tokens issued for
    /// it so far are revoked and `token` is recorded instead, in one transaction; false if the
    /// request is not a redeemed one of `client_id`'s.
    pub async fn reissue_auth_request_tokens(
        &self,
        id: &str,
        client_id: &str,
        token: &IssuedToken<'_>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await?;
        let (owned,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM auth_requests WHERE id = $1 AND client_id = $2 \
             AND status = 'redeemed' AND expires_at > $3",
        )
        .bind(id)
        .bind(client_id)
        .bind(token.issued_at)
        .fetch_one(&mut *tx)
        .await?;
        if owned != 1 {
            return Ok(false);
        }
        sqlx::query("UPDATE issued_tokens SET revoked_at = $1 WHERE auth_req_id = $2 AND revoked_at IS NULL")
            .bind(token.issued_at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        record_issued_token(&mut tx, id, token).await?;
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

    /// Revokes one access token; true if it was live until now.
    pub async fn revoke_token(&self, jti: &str, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE issued_tokens SET revoked_at = $1 WHERE jti = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(jti)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
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
        // The newest of the approver's own requests and of those shared with them, each read
        // through its index.
        let rows: Vec<ApproverRequest> = sqlx::query_as(&format!(
            "SELECT {}, c.name AS client_name FROM auth_requests r JOIN clients c ON c.id = r.client_id \
             WHERE r.id IN (\
               SELECT id FROM (SELECT id FROM auth_requests WHERE approver_id = $1 \
                 AND shared = 0 ORDER BY created_at DESC LIMIT $2) mine \
               UNION ALL \
               SELECT id FROM (SELECT q.id FROM request_addressees x JOIN auth_requests q \
                 ON q.id = x.auth_req_id WHERE x.approver_id = $1 \
                 ORDER BY q.created_at DESC LIMIT $2) shared) \
             ORDER BY r.created_at DESC, r.id DESC LIMIT $2",
            columns.join(", ")
        ))
        .bind(approver_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let (requests, names): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .filter_map(|r| match r.request.into_request() {
                Ok(request) => Some((request, r.client_name)),
                Err(e) => {
                    tracing::warn!(error = %e, "an unreadable request left out of an inbox");
                    None
                }
            })
            .unzip();
        Ok(self
            .with_parties(requests)
            .await?
            .into_iter()
            .zip(names)
            .collect())
    }

    /// The approver's requests made in one millisecond (to resolve a request page reference).
    pub async fn approver_requests_at(
        &self,
        approver_id: &str,
        created_at: i64,
    ) -> StoreResult<Vec<AuthRequest>> {
        let rows = requests(
            sqlx::query_as(&format!(
                "SELECT {} FROM auth_requests r WHERE r.created_at = $2 AND {}",
                super::decisions::qualified(COLUMNS, "r"),
                addressed_to("$1")
            ))
            .bind(approver_id)
            .bind(created_at)
            .fetch_all(self.pool())
            .await?,
        )?;
        self.with_parties(rows).await
    }

    /// When the approver's next pending request runs out of time, after `now`: their inbox changes
    /// then without any event.
    pub async fn next_pending_expiry(
        &self,
        approver_id: &str,
        now: i64,
    ) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT MIN(r.expires_at) FROM auth_requests r \
             WHERE r.status IN ('pending', 'partly_approved') AND r.expires_at > $2 AND {}",
            addressed_to("$1")
        ))
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

/// Records an issued access token, within the transaction that redeems (or re-issues for) `id`.
async fn record_issued_token(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
    token: &IssuedToken<'_>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO issued_tokens (jti, auth_req_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(token.jti)
    .bind(id)
    .bind(token.issued_at)
    .bind(token.expires_at)
    .execute(&mut **tx)
    .await
    .map_err(|e| StoreError::on_unique(e, "jti"))?;
    Ok(())
}
