//! The approval service behind the inbox and request pages: listing an approver's requests and
//! recording their decisions, each made with a fresh passkey assertion bound to that decision.
use std::sync::Arc;

use app::{
    model::{InboxView, RequestStatus, RequestSummary, RequestView},
    service::{ApprovalService, Session, UserResult},
};
use async_trait::async_trait;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{PasskeyAuthentication, PublicKeyCredential, RequestChallengeResponse};

use super::{
    approvers::Approver,
    passkeys::{public_key_json, AssertionError},
    service::{internal, take, IdentityApp},
};
use crate::{
    ciba::{
        auth_request::State,
        record::{request_digest, Evidence},
        request::{page_ref, page_ref_time},
        AuthRequest, Ciba, Decision, DecisionError,
    },
    secrets::hex,
};

const DECISION: &str = "decision";

/// Wrong user codes allowed per request; after that it can only be denied.
pub const USER_CODE_ATTEMPTS: i64 = 5;

const USER_CODE_LOCKED: &str =
    "Too many wrong user codes were entered for this request. It can only be denied now.";

#[derive(Serialize, Deserialize)]
struct PendingDecision {
    auth_req_id: String,
    approve: bool,
    digest: String,
    nonce: Vec<u8>,
    state: PasskeyAuthentication,
}

pub struct ApprovalApp {
    identity: Arc<IdentityApp>,
    ciba: Arc<Ciba>,
}

impl ApprovalApp {
    pub fn new(identity: Arc<IdentityApp>, ciba: Arc<Ciba>) -> ApprovalApp {
        ApprovalApp { identity, ciba }
    }

    /// The request a page reference names, if it is addressed to `approver_id`; anyone else learns
    /// nothing.
    async fn own_request(&self, approver_id: &str, reference: &str) -> UserResult<AuthRequest> {
        let missing = || "There is no such request for you.".to_owned();
        let created_at = page_ref_time(reference).ok_or_else(missing)?;
        self.ciba
            .store()
            .approver_requests_at(approver_id, created_at)
            .await
            .map_err(internal)?
            .into_iter()
            .find(|row| page_ref(&row.id) == reference)
            .ok_or_else(missing)
    }

    async fn client_name(&self, client_id: &str) -> String {
        match self.ciba.clients().get(client_id).await {
            Ok(Some(client)) => client.name.clone(),
            _ => "an unknown agent".into(),
        }
    }

    async fn view(&self, row: &AuthRequest, approver: &Approver) -> UserResult<RequestView> {
        let now = self.ciba.now();
        let action = row.action.clone();
        let user_code_locked = approver.requires_user_code
            && self
                .ciba
                .store()
                .user_code_failures(&row.id)
                .await
                .map_err(internal)?
                >= USER_CODE_ATTEMPTS;
        Ok(RequestView {
            id: page_ref(&row.id),
            client_name: self.client_name(&row.client_id).await,
            action: action.action,
            target: action.target,
            consequence: action.consequence,
            amount: action.amount,
            currency: action.currency,
            reversible: action.reversible,
            resource: action.resource,
            binding_message: row.binding_message.clone(),
            scope: row.scope.clone(),
            created_at: row.created_at,
            expires_at: row.expires_at,
            now,
            status: row.status(now),
            deny_reason: match &row.state {
                State::Denied { reason, .. } => reason.clone(),
                _ => None,
            },
            needs_user_code: approver.requires_user_code,
            user_code_locked,
        })
    }

    /// The approver's user_code, when their policy asks for it before approving. Wrong entries are
    /// counted on the request (in the database, so every instance and tab shares the count).
    async fn check_user_code(
        &self,
        approver: &Approver,
        row: &AuthRequest,
        code: Option<&str>,
    ) -> UserResult<()> {
        if !approver.requires_user_code {
            return Ok(());
        }
        let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
            return Err("Enter your user code to approve this request.".into());
        };
        let store = self.ciba.store();
        let Some(attempt) = store
            .reserve_user_code_attempt(&row.id, USER_CODE_ATTEMPTS)
            .await
            .map_err(internal)?
        else {
            return Err(USER_CODE_LOCKED.into());
        };
        if approver.user_code_matches(code) {
            store
                .refund_user_code_attempt(&row.id)
                .await
                .map_err(internal)?;
            return Ok(());
        }
        tracing::warn!(request = %page_ref(&row.id), approver_id = %approver.id, failures = attempt, "wrong user code on the request page");
        match USER_CODE_ATTEMPTS - attempt {
            left if left <= 0 => Err(USER_CODE_LOCKED.into()),
            1 => Err("That user code is not correct. 1 try left.".into()),
            left => Err(format!("That user code is not correct. {left} tries left.")),
        }
    }
}

fn decision_error(e: DecisionError) -> String {
    match e {
        DecisionError::NotFound | DecisionError::NotYours => {
            "There is no such request for you.".into()
        }
        DecisionError::AlreadyDecided => "This request has already been decided.".into(),
        DecisionError::Expired => "This request has expired; nothing was approved.".into(),
        DecisionError::Store(e) => internal(e),
    }
}

#[async_trait]
impl ApprovalService for ApprovalApp {
    async fn inbox(&self, session: &Session) -> UserResult<InboxView> {
        let approver = self.identity.require(session).await?;
        let now = self.ciba.now();
        let rows = self
            .ciba
            .store()
            .approver_requests(&approver.id, 100)
            .await
            .map_err(internal)?;
        let (mut pending, mut recent) = (Vec::new(), Vec::new());
        for (row, client_name) in rows {
            let status = row.status(now);
            let summary = RequestSummary {
                id: page_ref(&row.id),
                action: row.action.action,
                target: row.action.target,
                client_name,
                created_at: row.created_at,
                expires_at: row.expires_at,
                status,
            };
            if status == RequestStatus::Pending {
                pending.push(summary)
            } else if recent.len() < 20 {
                recent.push(summary)
            }
        }
        Ok(InboxView {
            pending,
            recent,
            now,
        })
    }

    async fn request(&self, session: &Session, id: &str) -> UserResult<RequestView> {
        let approver = self.identity.require(session).await?;
        let row = self.own_request(&approver.id, id).await?;
        self.view(&row, &approver).await
    }

    async fn start_decision(
        &self,
        session: &Session,
        id: &str,
        approve: bool,
        user_code: Option<String>,
    ) -> UserResult<RequestChallengeResponse> {
        let approver = self.identity.require(session).await?;
        let row = self.own_request(&approver.id, id).await?;
        match row.status(self.ciba.now()) {
            RequestStatus::Pending => {}
            RequestStatus::Expired => {
                return Err("This request has expired; nothing can be approved.".into())
            }
            RequestStatus::Approved | RequestStatus::Denied | RequestStatus::Redeemed => {
                return Err("This request has already been decided.".into())
            }
        }
        if approve {
            self.check_user_code(&approver, &row, user_code.as_deref())
                .await?;
        }
        let passkeys = self.identity.usable_passkeys(&approver.id).await?;
        if passkeys.is_empty() {
            return Err("You have no usable passkey. Add one on your account page.".into());
        }
        let digest = request_digest(&row);
        let bound = self
            .identity
            .passkeys()
            .start_bound_assertion(&passkeys, approve, &digest)
            .map_err(internal)?;
        let pending = PendingDecision {
            auth_req_id: row.id,
            approve,
            digest: hex(&digest),
            nonce: bound.nonce,
            state: bound.state,
        };
        session.insert(DECISION, pending).await.map_err(internal)?;
        Ok(bound.options)
    }

    async fn finish_decision(
        &self,
        session: &Session,
        id: &str,
        approve: bool,
        reason: Option<String>,
        credential: PublicKeyCredential,
    ) -> UserResult<RequestView> {
        let approver = self.identity.require(session).await?;
        let pending: PendingDecision = take(session, DECISION)
            .await?
            .ok_or("Press the button again to decide.")?;
        if page_ref(&pending.auth_req_id) != id || pending.approve != approve {
            return Err(
                "That passkey confirmation was for another decision. Press the button again."
                    .into(),
            );
        }
        let reason = reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        if reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > 500 || r.chars().any(char::is_control))
        {
            return Err("Keep the reason to 500 characters of plain text.".into());
        }
        let row = self.own_request(&approver.id, id).await?;
        if hex(&request_digest(&row)) != pending.digest {
            return Err(
                "The request changed while you were deciding. Reload it and decide again.".into(),
            );
        }
        let credential_id = URL_SAFE_NO_PAD.encode::<&[u8]>(credential.raw_id.as_ref());
        let (mut passkey, _) = self
            .identity
            .passkey_of(&approver.id, &credential_id)
            .await?;
        let now = self.ciba.now();
        let (synced, backed_up) = match self.identity.passkeys().finish_bound_assertion(
            &credential,
            &pending.state,
            &mut passkey,
        ) {
            Ok(flags) => flags,
            Err(AssertionError::PossibleClone) => {
                return Err(self.identity.suspend(&credential_id, now).await)
            }
            Err(AssertionError::Invalid(e)) => {
                tracing::warn!(error = %e, "decision assertion refused");
                return Err(
                    "Your passkey could not be verified; nothing was decided. Please try again."
                        .into(),
                );
            }
        };
        self.identity
            .record_use(&credential_id, &passkey, backed_up, now)
            .await?;
        let evidence = Evidence {
            credential_id,
            authenticator_data: credential.response.authenticator_data.to_vec(),
            client_data_json: credential.response.client_data_json.to_vec(),
            signature: credential.response.signature.to_vec(),
            nonce: pending.nonce,
            public_key: public_key_json(&passkey).map_err(internal)?,
        };
        let decision = if approve {
            Decision::approve_with_passkey(synced)
        } else {
            Decision::Deny { reason }
        };
        self.ciba
            .record_decision(&row.id, &approver.id, decision, &evidence)
            .await
            .map_err(decision_error)?;
        let row = self.own_request(&approver.id, id).await?;
        self.view(&row, &approver).await
    }
}
