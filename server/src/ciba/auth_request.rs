//! A backchannel authentication request and its state machine (CIBA §7, §11):
//!
//! ```text
//! Pending ──decide──▶ Approved ──redeem──▶ Redeemed
//!    │ │  └───decide──▶ Denied
//!    │ └──approve, quorum not met──▶ PartlyApproved ──approve…──▶ Approved (or ──deny──▶ Denied)
//!    └── the clock passes expires_at ──▶ Expired (derived, never stored)
//! ```
//!
//! A request is addressed to one approver, or (a group, or a policy asking for several approvals)
//! to the people copied into it when it was made: its addressees. Only they decide; a quorum counts
//! each person once.
//!
//! Transitions are functions that return the new state or why not; the store makes each one a
//! conditional update on the old state, so of two concurrent callers only one wins.
pub use app::model::RequestStatus;

use super::{action::AgentAction, quorum::Rule, Decision, DecisionError};
use crate::clock::Millis;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthRequest {
    pub id: String,
    pub client_id: String,
    /// The person the hint named (the agent acts for them); None when it named a group.
    pub approver_id: Option<String>,
    /// The group the hint named.
    pub group_id: Option<String>,
    /// The quorum in force, when a policy governs the request.
    pub rule: Option<Rule>,
    /// Who may decide: the named approver alone, or the people copied into the request when it was
    /// made (a group's members, or a policy's group without the person the agent acts for).
    pub addressees: Vec<String>,
    /// The addressees whose approvals are recorded so far (a quorum in progress).
    pub approved_by: Vec<String>,
    /// Delegates among the addressees, each with the approver they stand in for.
    pub on_behalf: Vec<(String, String)>,
    /// Its deciders are the addressees kept beside it (a group, a policy, or a delegate), not the
    /// named approver alone.
    pub shared: bool,
    /// When its rule's escalation group is to be asked too, if it is still open; and when it was.
    pub escalate_at: Option<Millis>,
    pub escalated_at: Option<Millis>,
    pub scope: String,
    pub binding_message: Option<String>,
    pub acr_values: Option<String>,
    /// The one action this request asks approval for.
    pub action: AgentAction,
    /// `authorization_details` exactly as stored: the decision's digest and the tokens carry these.
    pub authorization_details: String,
    pub notification_token: Option<String>,
    /// The JWK thumbprint of the key the client bound this request to (RFC 9449 §10): only a DPoP
    /// proof by that key redeems it, and its tokens are bound to it.
    pub dpop_jkt: Option<String>,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub interval_secs: i64,
    /// Wrong user codes entered on the request page (`approval::USER_CODE_ATTEMPTS` lock it).
    pub user_code_failures: i64,
    pub state: State,
}

/// What has happened to a request; expiry is not a state but a fact about the clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Pending,
    /// Approved by `approvals` distinct people, fewer than the rule asks for.
    PartlyApproved {
        approvals: i64,
    },
    Approved(Approval),
    Denied {
        decided_at: Millis,
        reason: Option<String>,
    },
    /// Approved, and its tokens collected by the client.
    Redeemed {
        approval: Approval,
        redeemed_at: Millis,
    },
}

impl State {
    pub fn stage(&self) -> Stage {
        match self {
            State::Pending => Stage::Pending,
            State::PartlyApproved { .. } => Stage::PartlyApproved,
            State::Approved(_) => Stage::Approved,
            State::Denied { .. } => Stage::Denied,
            State::Redeemed { .. } => Stage::Redeemed,
        }
    }
}

/// Where a request stands as the database keeps it (its `status` column): the state without its
/// details. Rows are decoded into it by the store, and every reader derives what a person is shown
/// from it by one rule ([`Stage::status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Pending,
    PartlyApproved,
    Approved,
    Denied,
    Redeemed,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Pending => "pending",
            Stage::PartlyApproved => "partly_approved",
            Stage::Approved => "approved",
            Stage::Denied => "denied",
            Stage::Redeemed => "redeemed",
        }
    }

    pub fn parse(stored: &str) -> Option<Stage> {
        [
            Stage::Pending,
            Stage::PartlyApproved,
            Stage::Approved,
            Stage::Denied,
            Stage::Redeemed,
        ]
        .into_iter()
        .find(|s| s.as_str() == stored)
    }

    /// Whether the request still waits for decisions (and so can expire).
    pub fn is_open(self) -> bool {
        matches!(self, Stage::Pending | Stage::PartlyApproved)
    }

    /// The status a person is shown at `now`. Only an open request expires: a decision stands as
    /// made. A quorum in progress is still pending to everyone, the agent included.
    pub fn status(self, expires_at: Millis, now: Millis) -> RequestStatus {
        match self {
            s if s.is_open() && now >= expires_at => RequestStatus::Expired,
            Stage::Pending | Stage::PartlyApproved => RequestStatus::Pending,
            Stage::Approved => RequestStatus::Approved,
            Stage::Denied => RequestStatus::Denied,
            Stage::Redeemed => RequestStatus::Redeemed,
        }
    }
}

/// For decoding a row's `status` column.
impl TryFrom<String> for Stage {
    type Error = String;

    fn try_from(stored: String) -> Result<Stage, String> {
        Stage::parse(&stored).ok_or_else(|| format!("unknown request status {stored:?}"))
    }
}

/// How an approval was made: the authentication's strength (RFC 8176 `acr` and `amr`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    pub decided_at: Millis,
    pub acr: String,
    pub amr: Vec<String>,
}

/// Who a new request is addressed to, as `/bc-authorize` resolved it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addressing {
    pub approver_id: Option<String>,
    pub group_id: Option<String>,
    pub rule: Option<Rule>,
    pub addressees: Vec<String>,
    /// (delegate, on behalf of).
    pub on_behalf: Vec<(String, String)>,
}

impl Addressing {
    /// One named approver, who alone decides.
    pub fn approver(id: &str) -> Addressing {
        Addressing {
            approver_id: Some(id.to_owned()),
            group_id: None,
            rule: None,
            addressees: vec![id.to_owned()],
            on_behalf: Vec::new(),
        }
    }

    /// Whether more than the named approver alone is involved.
    pub fn is_shared(&self) -> bool {
        let alone = match (&self.approver_id, self.addressees.as_slice()) {
            (Some(approver), [only]) => approver == only,
            _ => false,
        };
        self.group_id.is_some() || self.rule.is_some() || !alone
    }
}

/// Why a client's redemption is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedeemRefusal {
    WrongClient,
    Expired,
    Pending,
    Denied,
    /// Already redeemed: a replayed grant (RFC 6749 §10.5).
    Replayed,
}

impl AuthRequest {
    /// A new request, waiting for its addressees.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        client_id: String,
        addressing: Addressing,
        scope: String,
        binding_message: Option<String>,
        acr_values: Option<String>,
        action: AgentAction,
        notification_token: Option<String>,
        dpop_jkt: Option<String>,
        created_at: Millis,
        expires_at: Millis,
        interval_secs: i64,
    ) -> AuthRequest {
        AuthRequest {
            authorization_details: action.to_authorization_details().to_string(),
            shared: addressing.is_shared(),
            on_behalf: addressing.on_behalf,
            escalate_at: addressing
                .rule
                .as_ref()
                .and_then(|r| r.escalation.as_ref())
                .map(|e| created_at + e.after_secs * 1000),
            escalated_at: None,
            id,
            client_id,
            approver_id: addressing.approver_id,
            group_id: addressing.group_id,
            rule: addressing.rule,
            addressees: addressing.addressees,
            approved_by: Vec::new(),
            scope,
            binding_message,
            acr_values,
            action,
            notification_token,
            dpop_jkt,
            created_at,
            expires_at,
            interval_secs,
            user_code_failures: 0,
            state: State::Pending,
        }
    }

    pub fn is_expired(&self, now: Millis) -> bool {
        now >= self.expires_at
    }

    /// The status a person is shown (see [`Stage::status`]).
    pub fn status(&self, now: Millis) -> RequestStatus {
        self.state.stage().status(self.expires_at, now)
    }

    /// Whether more than the one named approver is involved (a group, a policy or a delegate):
    /// its addressees are then kept beside it, and each decision is counted against its rule.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// The approver `delegate` decides this request for, if they stand in for someone.
    pub fn on_behalf_of(&self, delegate: &str) -> Option<&str> {
        self.on_behalf
            .iter()
            .find(|(d, _)| d == delegate)
            .map(|(_, principal)| principal.as_str())
    }

    /// Distinct approvals needed before tokens exist.
    pub fn approvals_needed(&self) -> i64 {
        self.rule.as_ref().map_or(1, |r| r.approvals)
    }

    /// Approvals recorded so far.
    pub fn approvals(&self) -> i64 {
        match &self.state {
            State::Pending | State::Denied { .. } => 0,
            State::PartlyApproved { approvals } => *approvals,
            State::Approved(_) | State::Redeemed { .. } => self.approvals_needed(),
        }
    }

    /// Whether `approver_id` may decide this request.
    pub fn is_addressed_to(&self, approver_id: &str) -> bool {
        self.addressees.iter().any(|a| a == approver_id)
    }

    /// The state `decision` by `approver_id` at `now` leads to: an approval that completes the
    /// quorum approves, one that does not leaves it partly approved; any denial denies.
    pub fn decide(
        &self,
        approver_id: &str,
        decision: &Decision,
        now: Millis,
    ) -> Result<State, DecisionError> {
        if !self.is_addressed_to(approver_id) {
            return Err(DecisionError::NotYours);
        }
        match self.status(now) {
            RequestStatus::Pending => {}
            RequestStatus::Expired => return Err(DecisionError::Expired),
            _ => return Err(DecisionError::AlreadyDecided),
        }
        // One person counts once, whichever of their passkeys signs.
        if self.approved_by.iter().any(|a| a == approver_id) {
            return Err(DecisionError::AlreadyDecided);
        }
        Ok(match decision {
            Decision::Approve { .. } if self.approvals() + 1 < self.approvals_needed() => {
                State::PartlyApproved {
                    approvals: self.approvals() + 1,
                }
            }
            Decision::Approve { acr, amr } => State::Approved(Approval {
                decided_at: now,
                acr: acr.clone(),
                amr: amr.clone(),
            }),
            Decision::Deny { reason } => State::Denied {
                decided_at: now,
                reason: reason.clone(),
            },
        })
    }

    /// The state redemption by `client_id` at `now` leads to (CIBA §11: ownership, expiry, then the
    /// decision).
    pub fn redeem(&self, client_id: &str, now: Millis) -> Result<State, RedeemRefusal> {
        if self.client_id != client_id {
            return Err(RedeemRefusal::WrongClient);
        }
        if self.is_expired(now) {
            return Err(RedeemRefusal::Expired);
        }
        match &self.state {
            State::Pending | State::PartlyApproved { .. } => Err(RedeemRefusal::Pending),
            State::Denied { .. } => Err(RedeemRefusal::Denied),
            State::Redeemed { .. } => Err(RedeemRefusal::Replayed),
            State::Approved(approval) => Ok(State::Redeemed {
                approval: approval.clone(),
                redeemed_at: now,
            }),
        }
    }

    /// The approval, if the request was approved (whether or not its tokens were collected).
    pub fn approval(&self) -> Option<&Approval> {
        match &self.state {
            State::Approved(approval) | State::Redeemed { approval, .. } => Some(approval),
            _ => None,
        }
    }
}

/// A request for unit tests elsewhere in the domain: client `client` asks approver `jane`, made at
/// 1 s and expiring at 2 s.
#[cfg(test)]
pub(crate) fn sample() -> AuthRequest {
    tests::request()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn request() -> AuthRequest {
        let action = AgentAction {
            kind: "agent_action".into(),
            action: "refund".into(),
            target: "order 1".into(),
            consequence: "money back".into(),
            amount: None,
            currency: None,
            reversible: None,
            resource: None,
            tool: None,
            arguments: None,
        };
        AuthRequest::new(
            "id".into(),
            "client".into(),
            Addressing::approver("jane"),
            "openid".into(),
            None,
            None,
            action,
            None,
            None,
            1_000,
            2_000,
            5,
        )
    }

    fn approve() -> Decision {
        Decision::approve_with_passkey(false)
    }

    #[test]
    fn a_pending_request_expires_with_the_clock_and_then_cannot_be_decided() {
        let r = request();
        assert_eq!(r.status(1_999), RequestStatus::Pending);
        assert_eq!(r.status(2_000), RequestStatus::Expired);
        assert!(matches!(
            r.decide("jane", &approve(), 2_000),
            Err(DecisionError::Expired)
        ));
    }

    #[test]
    fn a_stored_stage_reads_back_and_only_pending_expires() {
        for stage in [
            Stage::Pending,
            Stage::PartlyApproved,
            Stage::Approved,
            Stage::Denied,
            Stage::Redeemed,
        ] {
            assert_eq!(Stage::parse(stage.as_str()), Some(stage));
        }
        assert_eq!(
            Stage::try_from("expired".to_owned()).ok(),
            None,
            "never stored"
        );
        assert_eq!(Stage::Pending.status(2_000, 2_000), RequestStatus::Expired);
        assert_eq!(
            Stage::Approved.status(2_000, 9_000),
            RequestStatus::Approved
        );
        assert_eq!(Stage::Denied.status(2_000, 9_000), RequestStatus::Denied);
    }

    #[test]
    fn only_the_addressed_approver_decides_and_only_once() {
        let mut r = request();
        assert!(matches!(
            r.decide("bob", &approve(), 1_500),
            Err(DecisionError::NotYours)
        ));
        r.state = r.decide("jane", &approve(), 1_500).unwrap();
        assert_eq!(r.status(1_600), RequestStatus::Approved);
        assert!(matches!(
            r.decide("jane", &Decision::Deny { reason: None }, 1_600),
            Err(DecisionError::AlreadyDecided)
        ));
        // A decision stands after the request's lifetime ends.
        assert_eq!(r.status(5_000), RequestStatus::Approved);
    }

    #[test]
    fn redemption_checks_client_then_expiry_then_the_decision() {
        let mut r = request();
        assert_eq!(r.redeem("client", 1_500), Err(RedeemRefusal::Pending));
        assert_eq!(r.redeem("other", 1_500), Err(RedeemRefusal::WrongClient));
        r.state = r.decide("jane", &approve(), 1_500).unwrap();
        assert_eq!(r.redeem("client", 2_000), Err(RedeemRefusal::Expired));
        r.state = r.redeem("client", 1_600).unwrap();
        assert_eq!(r.status(1_700), RequestStatus::Redeemed);
        assert_eq!(r.approval().unwrap().decided_at, 1_500);
        assert_eq!(r.redeem("client", 1_700), Err(RedeemRefusal::Replayed));
    }

    fn two_person(addressees: &[&str]) -> AuthRequest {
        let mut r = request();
        r.approver_id = None;
        r.group_id = Some("grp".into());
        r.rule = Some(Rule {
            policy: "pol".into(),
            version: 3,
            approvals: 2,
            group: Some("grp".into()),
            escalation: None,
        });
        r.addressees = addressees.iter().map(|a| a.to_string()).collect();
        r.shared = true;
        r
    }

    #[test]
    fn a_quorum_needs_distinct_addressees_and_any_denial_denies() {
        let mut r = two_person(&["ann", "bob", "cy"]);
        assert!(matches!(
            r.decide("jane", &approve(), 1_100),
            Err(DecisionError::NotYours)
        ));
        r.state = r.decide("ann", &approve(), 1_100).unwrap();
        assert_eq!(r.state, State::PartlyApproved { approvals: 1 });
        assert_eq!(r.status(1_200), RequestStatus::Pending, "the agent waits");
        assert_eq!(r.redeem("client", 1_200), Err(RedeemRefusal::Pending));
        r.approved_by.push("ann".into());
        assert!(
            matches!(
                r.decide("ann", &approve(), 1_200),
                Err(DecisionError::AlreadyDecided)
            ),
            "one person counts once"
        );
        let denied = r
            .decide("cy", &Decision::Deny { reason: None }, 1_300)
            .unwrap();
        assert!(matches!(denied, State::Denied { .. }), "{denied:?}");
        r.state = r.decide("bob", &approve(), 1_300).unwrap();
        assert!(matches!(r.state, State::Approved(_)));
        assert_eq!(r.approvals(), 2);
        assert_eq!(r.status(2_500), RequestStatus::Approved);
        assert!(matches!(
            two_person(&["ann"]).decide("ann", &approve(), 2_000),
            Err(DecisionError::Expired)
        ));
    }

    #[test]
    fn a_denial_is_final() {
        let mut r = request();
        r.state = r
            .decide("jane", &Decision::Deny { reason: None }, 1_500)
            .unwrap();
        assert_eq!(r.status(1_600), RequestStatus::Denied);
        assert_eq!(r.redeem("client", 1_600), Err(RedeemRefusal::Denied));
        assert!(r.approval().is_none());
    }
}
