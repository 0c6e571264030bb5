//! Recording an approver's decision. This is the only way a request becomes approved or denied; the
//! approval page calls it after verifying a fresh passkey assertion. No HTTP endpoint, flag or
//! environment variable reaches it otherwise.
use super::{
    auth_request::AuthRequest,
    record::{self, Evidence},
    Ciba,
};
use crate::store::{decisions::DecisionRow, StoreError};

/// What an approver chose, from the page through the passkey challenge to the record: one type, so
/// no layer passes an `approve` flag beside a reason that only a denial has.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "choice", rename_all = "snake_case")]
pub enum Choice {
    Approve,
    /// A denial, with the reason the approver typed (which the passkey signs).
    Deny {
        reason: Option<String>,
    },
}

impl Choice {
    pub fn approves(&self) -> bool {
        matches!(self, Choice::Approve)
    }

    /// The deny reason, if any.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Choice::Approve => None,
            Choice::Deny { reason } => reason.as_deref(),
        }
    }

    /// The decision this choice records, once a passkey (`synced` or not) has confirmed it.
    pub fn decision(self, synced: bool) -> Decision {
        match self {
            Choice::Approve => Decision::approve_with_passkey(synced),
            Choice::Deny { reason } => Decision::Deny { reason },
        }
    }
}

#[derive(Debug, Clone)]
pub enum Decision {
    /// Approved after an authentication whose strength is described by `acr` and `amr` (RFC 8176).
    Approve {
        acr: String,
        amr: Vec<String>,
    },
    Deny {
        reason: Option<String>,
    },
}

impl Decision {
    /// What the approver chose, without how they authenticated.
    pub fn choice(&self) -> Choice {
        match self {
            Decision::Approve { .. } => Choice::Approve,
            Decision::Deny { reason } => Choice::Deny {
                reason: reason.clone(),
            },
        }
    }

    /// An approval made with a passkey and user verification: phishing-resistant (`phr`), proven by the
    /// person's verification (`user`) and a key that is hardware-bound (`hwk`) or, when the passkey
    /// is synced by its provider, a software key (`swk`) (RFC 8176).
    pub fn approve_with_passkey(synced: bool) -> Decision {
        let key = if synced { "swk" } else { "hwk" };
        Decision::Approve {
            acr: "phr".into(),
            amr: vec![key.into(), "user".into()],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("no such request")]
    NotFound,
    #[error("this request is addressed to another approver")]
    NotYours,
    #[error("this request has already been decided")]
    AlreadyDecided,
    #[error("this request has expired")]
    Expired,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Ciba {
    /// Records `decision` by `approver_id` on a pending, unexpired request addressed to them, with the
    /// passkey assertion that made it, as one transaction: the request's new status and the chained,
    /// signed decision record. Exactly one of several concurrent decisions wins; the others get
    /// `AlreadyDecided`.
    pub async fn record_decision(
        &self,
        auth_req_id: &str,
        approver_id: &str,
        decision: Decision,
        evidence: &Evidence,
    ) -> Result<DecisionRow, DecisionError> {
        let mut request = self
            .store
            .auth_request(auth_req_id)
            .await?
            .ok_or(DecisionError::NotFound)?;
        // Another approval of the same quorum landing first changes the count this one is judged
        // against, not whether it counts: it is judged again on the request as it now is (the
        // passkey signed the choice and the statement, not the count). Bounded, since each lost
        // round means someone else's decision was recorded.
        for _ in 0..MAX_ROUNDS {
            if let Some(row) = self
                .try_record(&request, approver_id, &decision, evidence)
                .await?
            {
                return Ok(row);
            }
            request = self
                .store
                .auth_request(auth_req_id)
                .await?
                .ok_or(DecisionError::NotFound)?;
        }
        Err(DecisionError::AlreadyDecided)
    }

    /// One attempt at recording the decision on `request` as read: None when the request changed
    /// before the conditional update (a concurrent decision won).
    async fn try_record(
        &self,
        request: &AuthRequest,
        approver_id: &str,
        decision: &Decision,
        evidence: &Evidence,
    ) -> Result<Option<DecisionRow>, DecisionError> {
        let now = self.clock.now();
        let state = request.decide(approver_id, decision, now)?;
        let settled = !state.stage().is_open();
        let choice = decision.choice();
        // CIBA §10.2, §10.3: a ping or push client is told of the outcome (not of an approval that
        // leaves a quorum short); the notification is queued with it. Only a request made in ping
        // or push mode carries the bearer token the client checks, so one made before a switch
        // from poll is left to polling.
        let notify_client = settled
            && request.notification_token.is_some()
            && matches!(
                self.clients().get(&request.client_id).await,
                Ok(Some(client)) if client.delivery_mode != super::DeliveryMode::Poll
            );
        let keys = &self.keys;
        let seal = |prev_hash: &str| {
            let mut row = record::unsealed(request, approver_id, &choice, evidence, now, prev_hash);
            row.record_hash = record::record_hash(&row);
            row.jws = keys
                .sign(record::RECORD_JWS_TYPE, record::jws_claims(&row))
                .map_err(|e| {
                    StoreError::Unavailable(format!("signing the decision record: {e}"))
                })?;
            Ok(row)
        };
        let appended = self
            .store
            .append_decision(request, approver_id, &state, now, notify_client, seal)
            .await;
        let row = match appended {
            Ok(Some(row)) => row,
            // The same person deciding twice at once: the second finds their own record.
            Ok(None) | Err(StoreError::Conflict(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if settled {
            self.pending.mark_decided(&request.id);
        }
        if notify_client {
            self.client_notifications.notify_one();
        }
        // On PostgreSQL the decision's NOTIFY (in its transaction) tells every instance.
        if self.store.backend() == crate::store::Backend::Sqlite {
            for addressee in &request.addressees {
                self.inbox_changed_elsewhere(addressee);
            }
        }
        tracing::info!(
            approver_id,
            approve = choice.approves(),
            settled,
            seq = row.seq,
            "decision recorded"
        );
        Ok(Some(row))
    }
}

/// Attempts at recording one decision while concurrent ones on the same request land first.
const MAX_ROUNDS: usize = 12;
