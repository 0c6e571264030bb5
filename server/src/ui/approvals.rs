//! The inbox and request pages' service: the approval use-case (`ciba::approval`) with its answers as
//! views and its refusals as sentences with HTTP statuses, and the decision ceremony kept in the
//! session between its two halves. (The passkey verifier the use-case decides with is
//! `identity::verifier`.)
use app::{
    model::{self, InboxView, RequestSummary, RequestView},
    service::{ApprovalService, SignedIn, UiError, UserResult},
};
use async_trait::async_trait;
use webauthn_rs::prelude::{PublicKeyCredential, RequestChallengeResponse};

use super::identity::{internal, passkey_refusal, take};
use crate::ciba::{
    approval::{ApprovalError, Approvals, Decided, Parties, PendingDecision, Shown},
    auth_request::{AuthRequest, RequestStatus, State},
    ids::page_ref,
    Choice,
};

/// The page's choice, as the domain's.
fn choice(choice: model::Choice) -> Choice {
    match choice {
        model::Choice::Approve => Choice::Approve,
        model::Choice::Deny { reason } => Choice::Deny { reason },
    }
}

/// The session key of a decision ceremony in progress.
const DECISION: &str = "decision";

pub struct ApprovalPages {
    approvals: Approvals,
}

impl ApprovalPages {
    pub fn new(approvals: Approvals) -> ApprovalPages {
        ApprovalPages { approvals }
    }
}

fn refusal(e: ApprovalError) -> UiError {
    match e {
        ApprovalError::NoSuchRequest => {
            UiError::NotFound("There is no such request for you.".into())
        }
        ApprovalError::AlreadyDecided => {
            UiError::Conflict("This request has already been decided.".into())
        }
        ApprovalError::Expired => {
            UiError::Conflict("This request has expired; nothing was approved.".into())
        }
        ApprovalError::UserCodeMissing => {
            UiError::Invalid("Enter your user code to approve this request.".into())
        }
        ApprovalError::UserCodeWrong { left: 1 } => {
            UiError::Forbidden("That user code is not correct. 1 try left.".into())
        }
        ApprovalError::UserCodeWrong { left } => {
            UiError::Forbidden(format!("That user code is not correct. {left} tries left."))
        }
        ApprovalError::UserCodeLocked => UiError::TooMany(
            "Too many wrong user codes were entered for this request. It can only be denied now."
                .into(),
        ),
        ApprovalError::NoUsablePasskey => {
            UiError::Forbidden("You have no usable passkey. Add one on your account page.".into())
        }
        ApprovalError::NotStarted => UiError::Conflict("Press the button again to decide.".into()),
        ApprovalError::OtherDecision => UiError::Conflict(
            "That passkey confirmation was for another decision. Press the button again.".into(),
        ),
        ApprovalError::Changed => UiError::Conflict(
            "The request changed while you were deciding. Reload it and decide again.".into(),
        ),
        ApprovalError::BadReason => {
            UiError::Invalid("Keep the reason to 500 characters of plain text.".into())
        }
        ApprovalError::Passkey(e) => passkey_refusal(e),
        ApprovalError::Store(e) => internal(e),
    }
}

fn summary((request, client_name): (AuthRequest, String), now: i64) -> RequestSummary {
    RequestSummary {
        id: page_ref(&request.id),
        status: request.status(now),
        action: request.action.action,
        target: request.action.target,
        client_name,
        created_at: request.created_at,
        expires_at: request.expires_at,
    }
}

fn view(shown: Shown, user: &SignedIn) -> RequestView {
    let Shown {
        request,
        client_name,
        user_code_locked,
        now,
        parties,
    } = shown;
    let (parties, shared_outcome) = parties.map(|p| said(&p, &request, now)).unwrap_or_default();
    // What the page says once the viewer cannot decide the request (the page itself says when it
    // expires while open).
    let outcome = shared_outcome.or_else(|| match request.status(now) {
        RequestStatus::Pending => None,
        RequestStatus::Approved | RequestStatus::Redeemed => Some(
            "You approved this request. The agent can go ahead with exactly this action.".into(),
        ),
        RequestStatus::Denied => Some("You denied this request. The agent has been told.".into()),
        RequestStatus::Expired => {
            Some("This request has expired. Nothing was approved; the agent must ask again.".into())
        }
    });
    RequestView {
        needs_user_code: user.requires_user_code,
        user_code_locked: user.requires_user_code && user_code_locked,
        parties,
        outcome,
        ..statement_view(&request, client_name, now)
    }
}

/// A shared request's parties in sentences, and what its page says once it cannot be decided
/// there.
fn said(p: &Parties, request: &AuthRequest, now: i64) -> (Vec<String>, Option<String>) {
    let who = |d: &Decided| {
        let person = if d.you {
            "you".to_owned()
        } else {
            format!("{} ({})", d.name, d.email)
        };
        match &d.for_whom {
            Some(principal) => format!("{person} on behalf of {principal}"),
            None => person,
        }
    };
    let mut lines = Vec::new();
    if let Some((name, email)) = &p.standing_in_for {
        lines.push(format!(
            "You decide this on behalf of {name} ({email}), who handed their requests to you for now."
        ));
    }
    if let Some(group) = &p.group {
        lines.push(format!(
            "Sent to the group {group}: {}",
            if request.rule.is_some() {
                "each member may approve once."
            } else {
                "whoever decides first settles it for everyone."
            }
        ));
    }
    if let Some((name, version)) = &p.policy {
        let needed = request.approvals_needed();
        lines.push(format!(
            "Needs {needed} approvals by different people, under the policy “{name}” (version {version}). Any denial denies it."
        ));
    }
    let approvers: Vec<String> = p.decisions.iter().filter(|d| d.approved).map(who).collect();
    // While it is open; once settled, the outcome says who.
    if !approvers.is_empty() && request.status(now) == RequestStatus::Pending {
        lines.push(format!("Approved so far by {}.", approvers.join(", ")));
    }
    let denier = p.decisions.iter().find(|d| !d.approved);
    let outcome = match request.status(now) {
        RequestStatus::Pending if p.waiting_for_others => {
            let left = request.approvals_needed() - request.approvals();
            Some(format!(
                "You approved. It needs {left} more approval{} before the agent can go ahead.",
                if left == 1 { "" } else { "s" }
            ))
        }
        RequestStatus::Approved | RequestStatus::Redeemed => Some(format!(
            "Approved by {}. The agent can go ahead with exactly this action.",
            approvers.join(" and ")
        )),
        RequestStatus::Denied => {
            denier.map(|d| format!("Denied by {}. The agent has been told.", who(d)))
        }
        _ => None,
    };
    (lines, outcome)
}

/// The request as its page shows it (the statement and its context), for whoever reads it.
pub(crate) fn statement_view(request: &AuthRequest, client_name: String, now: i64) -> RequestView {
    let action = request.action.clone();
    RequestView {
        id: page_ref(&request.id),
        client_name,
        action: action.action,
        target: action.target,
        consequence: action.consequence,
        amount: action.amount,
        currency: action.currency,
        reversible: action.reversible,
        resource: action.resource,
        // By name, as RFC 8785 orders them for the digest the approval binds.
        arguments: action
            .arguments
            .unwrap_or_default()
            .into_iter()
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .map(|(name, value)| format!("{name}: {value}"))
            .collect(),
        tool: action.tool,
        binding_message: request.binding_message.clone(),
        scope: request.scope.clone(),
        created_at: request.created_at,
        expires_at: request.expires_at,
        now,
        status: request.status(now),
        deny_reason: match &request.state {
            State::Denied { reason, .. } => reason.clone(),
            _ => None,
        },
        needs_user_code: false,
        user_code_locked: false,
        parties: Vec::new(),
        outcome: None,
    }
}

#[async_trait]
impl ApprovalService for ApprovalPages {
    async fn inbox(&self, user: &SignedIn) -> UserResult<InboxView> {
        let inbox = self
            .approvals
            .inbox(&user.approver_id)
            .await
            .map_err(refusal)?;
        let now = inbox.now;
        Ok(InboxView {
            pending: inbox.pending.into_iter().map(|r| summary(r, now)).collect(),
            recent: inbox.recent.into_iter().map(|r| summary(r, now)).collect(),
            now,
        })
    }

    async fn request(&self, user: &SignedIn, id: &str) -> UserResult<RequestView> {
        let shown = self
            .approvals
            .request(&user.approver_id, id)
            .await
            .map_err(refusal)?;
        Ok(view(shown, user))
    }

    async fn start_decision(
        &self,
        user: &SignedIn,
        id: &str,
        chosen: model::Choice,
        user_code: Option<String>,
    ) -> UserResult<RequestChallengeResponse> {
        let (options, pending) = self
            .approvals
            .start(&user.approver_id, id, choice(chosen), user_code.as_deref())
            .await
            .map_err(refusal)?;
        user.session
            .insert(DECISION, pending)
            .await
            .map_err(internal)?;
        Ok(options)
    }

    async fn finish_decision(
        &self,
        user: &SignedIn,
        id: &str,
        chosen: model::Choice,
        credential: PublicKeyCredential,
    ) -> UserResult<RequestView> {
        let pending: Option<PendingDecision> = take(&user.session, DECISION).await?;
        let shown = self
            .approvals
            .finish(&user.approver_id, id, choice(chosen), pending, &credential)
            .await
            .map_err(refusal)?;
        Ok(view(shown, user))
    }
}
