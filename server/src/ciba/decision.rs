//! Recording an approver's decision. This is the only way a request becomes approved or denied; the
//! approval page calls it after verifying a fresh passkey assertion. No HTTP endpoint, flag or
//! environment variable reaches it otherwise.
use super::Ciba;
use crate::store::{auth_requests::DecisionUpdate, StoreError};

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
    /// An approval made with a passkey and user verification: phishing-resistant (`phr`), proven by a
    /// hardware-bound key (`hwk`) and the user's verification (`user`).
    pub fn approve_with_passkey() -> Decision {
        Decision::Approve {
            acr: "phr".into(),
            amr: vec!["hwk".into(), "user".into()],
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
    /// Records `decision` by `approver_id` on a pending, unexpired request addressed to them. Exactly
    /// one of several concurrent decisions wins; the others get `AlreadyDecided`.
    pub async fn record_decision(
        &self,
        auth_req_id: &str,
        approver_id: &str,
        decision: Decision,
    ) -> Result<(), DecisionError> {
        let now = self.clock.now();
        let amr_json;
        let update = match &decision {
            Decision::Approve { acr, amr } => {
                amr_json = serde_json::to_string(amr).expect("strings serialise");
                DecisionUpdate {
                    status: "approved",
                    decided_at: now,
                    deny_reason: None,
                    acr: Some(acr),
                    amr: Some(&amr_json),
                }
            }
            Decision::Deny { reason } => DecisionUpdate {
                status: "denied",
                decided_at: now,
                deny_reason: reason.as_deref(),
                acr: None,
                amr: None,
            },
        };
        if self
            .store
            .decide_auth_request(auth_req_id, approver_id, &update)
            .await?
        {
            self.pending.mark_decided(auth_req_id);
            tracing::info!(approver_id, decision = update.status, "decision recorded");
            return Ok(());
        }
        let row = self
            .store
            .auth_request(auth_req_id)
            .await?
            .ok_or(DecisionError::NotFound)?;
        Err(if row.approver_id != approver_id {
            DecisionError::NotYours
        } else if row.status != "pending" {
            DecisionError::AlreadyDecided
        } else {
            DecisionError::Expired
        })
    }
}
