//! Recording an approver's decision. This is the only way a request becomes approved or denied; the
//! approval page calls it after verifying a fresh passkey assertion. No HTTP endpoint, flag or
//! environment variable reaches it otherwise.
use super::{
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
        let now = self.clock.now();
        let request = self
            .store
            .auth_request(auth_req_id)
            .await?
            .ok_or(DecisionError::NotFound)?;
        let state = request.decide(approver_id, &decision, now)?;
        let choice = decision.choice();
        // CIBA §10.2, §10.3: a ping or push client is told of the decision; the notification is
        // queued with it. Only a request made in ping or push mode carries the bearer token the
        // client checks, so one made before a switch from poll is left to polling.
        let notify_client = request.notification_token.is_some()
            && matches!(
                self.clients().get(&request.client_id).await,
                Ok(Some(client)) if client.delivery_mode != super::DeliveryMode::Poll
            );
        let keys = &self.keys;
        let seal = |prev_hash: &str| {
            let mut row = record::unsealed(&request, &choice, evidence, now, prev_hash);
            row.record_hash = record::record_hash(&row);
            row.jws = keys
                .sign(record::RECORD_JWS_TYPE, record::jws_claims(&row))
                .map_err(|e| {
                    StoreError::Unavailable(format!("signing the decision record: {e}"))
                })?;
            Ok(row)
        };
        if let Some(row) = self
            .store
            .append_decision(auth_req_id, approver_id, &state, notify_client, seal)
            .await?
        {
            self.pending.mark_decided(auth_req_id);
            if notify_client {
                self.client_notifications.notify_one();
            }
            // On PostgreSQL the decision's NOTIFY (in its transaction) tells every instance.
            if self.store.backend() == crate::store::Backend::Sqlite {
                self.inbox_changed_elsewhere(approver_id);
            }
            tracing::info!(
                approver_id,
                approve = choice.approves(),
                seq = row.seq,
                "decision recorded"
            );
            return Ok(row);
        }
        // Lost a race: the request as it is now says why.
        let latest = self
            .store
            .auth_request(auth_req_id)
            .await?
            .ok_or(DecisionError::NotFound)?;
        Err(
            match latest.decide(approver_id, &decision, self.clock.now()) {
                Err(e) => e,
                Ok(_) => DecisionError::AlreadyDecided,
            },
        )
    }
}
