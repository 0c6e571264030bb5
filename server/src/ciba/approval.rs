//! The approval use-case: an approver reads their requests and decides one with a fresh passkey
//! assertion whose challenge commits to that decision on that request (`record::decision_challenge`).
//! Passkeys are reached through the narrow [`PasskeyVerifier`] (`identity::verifier`); the browser-facing adapter (`ui`) keeps
//! the ceremony between its two halves and turns refusals into sentences.
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use webauthn_rs_proto::{PublicKeyCredential, RequestChallengeResponse};

use super::{
    auth_request::{AuthRequest, RequestStatus},
    ids::{page_ref, page_ref_time},
    record::{decision_challenge, request_digest, Evidence},
    Choice, Ciba, DecisionError,
};
use crate::{
    clock::Millis,
    identity::{approvers, passkeys::PasskeyError},
    secrets::hex,
    store::StoreError,
};

/// Wrong user codes allowed per request; after that it can only be denied.
pub const USER_CODE_ATTEMPTS: i64 = 5;
/// Longest deny reason, in characters.
pub const MAX_REASON: usize = 500;
/// How many of the newest requests an inbox looks at, and how many decided ones it lists.
const INBOX_WINDOW: i64 = 100;
const RECENT_SHOWN: usize = 20;

pub use crate::identity::verifier::{Challenge, PasskeyVerifier, Verified};

/// A decision ceremony between its start and its finish; the adapter keeps it (in the session).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingDecision {
    auth_req_id: String,
    /// What the challenge covers, a denial's reason included.
    choice: Choice,
    digest: String,
    nonce: Vec<u8>,
    state: String,
}

/// Why an approver's action was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("no such request for this approver")]
    NoSuchRequest,
    #[error("already decided")]
    AlreadyDecided,
    #[error("expired")]
    Expired,
    #[error("a user code is needed")]
    UserCodeMissing,
    #[error("wrong user code; {left} tries left")]
    UserCodeWrong { left: i64 },
    #[error("too many wrong user codes")]
    UserCodeLocked,
    #[error("no usable passkey")]
    NoUsablePasskey,
    #[error("no decision was started")]
    NotStarted,
    #[error("the passkey confirmation was for another decision")]
    OtherDecision,
    #[error("the request changed while it was being decided")]
    Changed,
    #[error("the reason is too long or not plain text")]
    BadReason,
    #[error(transparent)]
    Passkey(#[from] PasskeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<DecisionError> for ApprovalError {
    fn from(e: DecisionError) -> ApprovalError {
        match e {
            DecisionError::NotFound | DecisionError::NotYours => ApprovalError::NoSuchRequest,
            DecisionError::AlreadyDecided => ApprovalError::AlreadyDecided,
            DecisionError::Expired => ApprovalError::Expired,
            DecisionError::Store(e) => ApprovalError::Store(e),
        }
    }
}

/// One request as its approver sees it.
pub struct Shown {
    pub request: AuthRequest,
    pub client_name: String,
    /// Too many wrong user codes: it can only be denied.
    pub user_code_locked: bool,
    pub now: Millis,
    /// Who else is involved, when the request is shared.
    pub parties: Option<Parties>,
}

/// The others a shared request involves, for its page: its group, the policy it is held to, and
/// who has decided it so far, oldest first.
pub struct Parties {
    pub group: Option<String>,
    /// The policy's name and the version in force.
    pub policy: Option<(String, i64)>,
    pub decisions: Vec<Decided>,
    /// The viewer approved, and the quorum still waits for others.
    pub waiting_for_others: bool,
    /// The viewer decides for this approver (name, e-mail), who handed their requests over.
    pub standing_in_for: Option<(String, String)>,
}

pub struct Decided {
    pub name: String,
    pub email: String,
    pub approved: bool,
    /// The viewer themself.
    pub you: bool,
    /// The name of the approver they decided for, as a delegate.
    pub for_whom: Option<String>,
}

/// An approver's inbox: what waits for them, and what they decided lately, newest first.
pub struct Inbox {
    pub pending: Vec<(AuthRequest, String)>,
    pub recent: Vec<(AuthRequest, String)>,
    pub now: Millis,
}

pub struct Approvals {
    ciba: Arc<Ciba>,
    passkeys: Arc<dyn PasskeyVerifier>,
}

impl Approvals {
    pub fn new(ciba: Arc<Ciba>, passkeys: Arc<dyn PasskeyVerifier>) -> Approvals {
        Approvals { ciba, passkeys }
    }

    pub async fn inbox(&self, approver_id: &str) -> Result<Inbox, ApprovalError> {
        let now = self.ciba.now();
        let rows = self
            .ciba
            .store
            .approver_requests(approver_id, INBOX_WINDOW)
            .await?;
        // A quorum's request this approver has approved waits for others, not for them.
        let (pending, decided): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(r, _)| {
            r.status(now) == RequestStatus::Pending
                && !r.approved_by.iter().any(|a| a == approver_id)
        });
        Ok(Inbox {
            pending,
            recent: decided.into_iter().take(RECENT_SHOWN).collect(),
            now,
        })
    }

    /// The request a page reference names, if it is addressed to `approver_id`; anyone else learns
    /// nothing.
    async fn own_request(
        &self,
        approver_id: &str,
        reference: &str,
    ) -> Result<AuthRequest, ApprovalError> {
        let created_at = page_ref_time(reference).ok_or(ApprovalError::NoSuchRequest)?;
        self.ciba
            .store
            .approver_requests_at(approver_id, created_at)
            .await?
            .into_iter()
            .find(|row| page_ref(&row.id) == reference)
            .ok_or(ApprovalError::NoSuchRequest)
    }

    pub async fn request(
        &self,
        approver_id: &str,
        reference: &str,
    ) -> Result<Shown, ApprovalError> {
        let request = self.own_request(approver_id, reference).await?;
        self.shown(request, approver_id).await
    }

    /// The group, policy and decisions of a shared request, as `viewer` sees them.
    async fn parties(
        &self,
        request: &AuthRequest,
        viewer: &str,
    ) -> Result<Option<Parties>, ApprovalError> {
        if !request.is_shared() {
            return Ok(None);
        }
        let store = &self.ciba.store;
        let group = match &request.group_id {
            Some(id) => crate::identity::groups::by_id(store, id)
                .await?
                .map(|g| g.name),
            None => None,
        };
        let policy = match &request.rule {
            Some(rule) => Some((
                store
                    .policy_version(&rule.policy, rule.version)
                    .await?
                    .map_or_else(|| rule.policy.clone(), |p| p.name),
                rule.version,
            )),
            None => None,
        };
        let person = |id: String| async move {
            Ok::<_, StoreError>(
                approvers::by_id(store, &id)
                    .await?
                    .map_or_else(|| (id, String::new()), |a| (a.name, a.email)),
            )
        };
        let mut decisions = Vec::new();
        for record in store.decisions_for(&request.id).await? {
            let (name, email) = person(record.approver_id.clone()).await?;
            let for_whom = match record.on_behalf_of {
                Some(id) => Some(person(id).await?.0),
                None => None,
            };
            decisions.push(Decided {
                name,
                email,
                approved: record.decision == "approve",
                you: record.approver_id == viewer,
                for_whom,
            });
        }
        let standing_in_for = match request.on_behalf_of(viewer) {
            Some(id) => Some(person(id.to_owned()).await?),
            None => None,
        };
        Ok(Some(Parties {
            group,
            policy,
            waiting_for_others: request.state.stage().is_open()
                && request.approved_by.iter().any(|a| a == viewer),
            decisions,
            standing_in_for,
        }))
    }

    async fn shown(&self, request: AuthRequest, viewer: &str) -> Result<Shown, ApprovalError> {
        let parties = self.parties(&request, viewer).await?;
        let client_name = match self.ciba.clients().get(&request.client_id).await {
            Ok(Some(client)) => client.name.clone(),
            _ => "an unknown agent".into(),
        };
        let user_code_locked = request.user_code_failures >= USER_CODE_ATTEMPTS;
        Ok(Shown {
            request,
            client_name,
            user_code_locked,
            now: self.ciba.now(),
            parties,
        })
    }

    /// Starts deciding: checks the request can still be decided and, to approve, the approver's user
    /// code when their policy asks for one; then a passkey challenge bound to this choice (a deny
    /// reason included, which the passkey therefore signs) on this request.
    pub async fn start(
        &self,
        approver_id: &str,
        reference: &str,
        choice: Choice,
        user_code: Option<&str>,
    ) -> Result<(RequestChallengeResponse, PendingDecision), ApprovalError> {
        let choice = normalised(choice)?;
        let request = self.own_request(approver_id, reference).await?;
        match request.status(self.ciba.now()) {
            RequestStatus::Pending => {}
            RequestStatus::Expired => return Err(ApprovalError::Expired),
            RequestStatus::Approved | RequestStatus::Denied | RequestStatus::Redeemed => {
                return Err(ApprovalError::AlreadyDecided)
            }
        }
        // One person counts once: someone whose approval is recorded has decided.
        if request.approved_by.iter().any(|a| a == approver_id) {
            return Err(ApprovalError::AlreadyDecided);
        }
        if choice.approves() {
            self.check_user_code(approver_id, &request, user_code)
                .await?;
        }
        let digest = request_digest(&request);
        let signed = choice.clone();
        let bind = move |nonce: &[u8]| decision_challenge(&signed, &digest, nonce);
        let challenge = self
            .passkeys
            .challenge(approver_id, &bind)
            .await?
            .ok_or(ApprovalError::NoUsablePasskey)?;
        let pending = PendingDecision {
            auth_req_id: request.id,
            choice,
            digest: hex(&digest),
            nonce: challenge.nonce,
            state: challenge.state,
        };
        Ok((challenge.options, pending))
    }

    /// Finishes deciding: the assertion must answer the challenge of this very choice on the request
    /// as it still is, by one of the approver's passkeys; then the decision is recorded.
    pub async fn finish(
        &self,
        approver_id: &str,
        reference: &str,
        choice: Choice,
        pending: Option<PendingDecision>,
        credential: &PublicKeyCredential,
    ) -> Result<Shown, ApprovalError> {
        let pending = pending.ok_or(ApprovalError::NotStarted)?;
        if page_ref(&pending.auth_req_id) != reference || pending.choice != normalised(choice)? {
            return Err(ApprovalError::OtherDecision);
        }
        let request = self.own_request(approver_id, reference).await?;
        if hex(&request_digest(&request)) != pending.digest {
            return Err(ApprovalError::Changed);
        }
        let verified = self
            .passkeys
            .verify(approver_id, &pending.state, credential)
            .await?;
        let evidence = Evidence {
            nonce: pending.nonce,
            ..verified.evidence
        };
        let decision = pending.choice.decision(verified.synced);
        self.ciba
            .record_decision(&request.id, approver_id, decision, &evidence)
            .await?;
        let request = self.own_request(approver_id, reference).await?;
        self.shown(request, approver_id).await
    }

    /// The approver's user_code, when their policy asks for it before approving. Wrong entries are
    /// counted on the request (in the database, so every instance and tab shares the count); an
    /// attempt is taken before the code is compared, so simultaneous guesses cannot all slip under
    /// the limit.
    async fn check_user_code(
        &self,
        approver_id: &str,
        request: &AuthRequest,
        code: Option<&str>,
    ) -> Result<(), ApprovalError> {
        let approver = approvers::by_id(&self.ciba.store, approver_id)
            .await?
            .ok_or(ApprovalError::NoSuchRequest)?;
        if !approver.requires_user_code {
            return Ok(());
        }
        let code = code
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or(ApprovalError::UserCodeMissing)?;
        let store = &self.ciba.store;
        let attempt = store
            .reserve_user_code_attempt(&request.id, USER_CODE_ATTEMPTS)
            .await?
            .ok_or(ApprovalError::UserCodeLocked)?;
        if approver.user_code_matches(code) {
            store.refund_user_code_attempt(&request.id).await?;
            return Ok(());
        }
        tracing::warn!(request = %page_ref(&request.id), approver_id, failures = attempt, "wrong user code on the request page");
        Err(match USER_CODE_ATTEMPTS - attempt {
            left if left <= 0 => ApprovalError::UserCodeLocked,
            left => ApprovalError::UserCodeWrong { left },
        })
    }
}

/// A choice as recorded: a deny reason trimmed, none when empty; refused when too long or not plain
/// text.
fn normalised(choice: Choice) -> Result<Choice, ApprovalError> {
    let Choice::Deny { reason } = choice else {
        return Ok(Choice::Approve);
    };
    let reason = reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
    match reason {
        Some(r) if r.chars().count() > MAX_REASON || r.chars().any(char::is_control) => {
            Err(ApprovalError::BadReason)
        }
        other => Ok(Choice::Deny {
            reason: other.map(str::to_owned),
        }),
    }
}
