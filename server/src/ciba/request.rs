//! Starting a backchannel authentication request (CIBA §7.1 validation, §7.3 acknowledgement).
use serde::Serialize;
use serde_json::Value;

use super::{
    action::AgentAction,
    auth_request::{Addressing, AuthRequest},
    checks::{
        check_acr_values, check_authorization_details, check_binding_message, check_dpop_jkt,
        check_notification_token, check_requested_expiry, check_scope,
    },
    hints::Hinted,
    ids::new_auth_req_id,
    quorum, Ciba, CibaError, Client, DeliveryMode,
};
use crate::{
    clock::Millis,
    identity::{
        approvers::{self, Approver},
        delegations,
    },
    store::request_inserts::InsertOutcome,
};

/// `authorization_details` as it arrived: text from a form, or a claim of a signed request.
#[derive(Debug, Clone)]
pub enum RawDetails {
    Text(String),
    Json(Value),
}

/// The authentication request parameters, however they arrived (form or signed request).
#[derive(Debug, Default, Clone)]
pub struct BackchannelParams {
    pub scope: Option<String>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
    pub login_hint_token: Option<String>,
    pub binding_message: Option<String>,
    pub user_code: Option<String>,
    pub requested_expiry: Option<String>,
    pub acr_values: Option<String>,
    pub authorization_details: Option<RawDetails>,
    pub client_notification_token: Option<String>,
    /// RFC 9449 §10: the thumbprint of the DPoP key the tokens are to be bound to.
    pub dpop_jkt: Option<String>,
}

/// How the client hears of the outcome and which key its tokens are bound to.
struct Delivery {
    notification_token: Option<String>,
    dpop_jkt: Option<String>,
}

/// Announced when a request starts waiting, once per addressee (for notifications).
#[derive(Debug, Clone)]
pub struct RequestCreated {
    /// The request has several addressees: each is told under their own outbox key.
    pub shared: bool,
    pub auth_req_id: String,
    pub approver_id: String,
    pub approver_email: String,
    pub approver_name: String,
    pub client_name: String,
    pub action: String,
    pub target: String,
    /// Unix milliseconds: a notification is worthless after this.
    pub expires_at: i64,
}

/// Wrong user codes a client may give for one approver before its codes for them are refused.
pub const USER_CODE_TRIES: i64 = 5;

/// How long wrong user codes are counted, and refused after the last try.
pub const USER_CODE_LOCK_MS: Millis = 15 * 60_000;

/// CIBA §7.3: the successful acknowledgement.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Acknowledgement {
    pub auth_req_id: String,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
}

impl Ciba {
    /// Validates a request from `client` and, if it names a known approver and stays within the abuse
    /// limits, stores it as pending.
    pub async fn start_request(
        &self,
        client: &Client,
        params: BackchannelParams,
    ) -> Result<Acknowledgement, CibaError> {
        let now = self.clock.now();
        // CIBA §7.1, in the order applied; the first rule broken names the error (§13).
        let scope = check_scope(client, params.scope.as_deref())?;
        let notification_token =
            check_notification_token(client, params.client_notification_token)?;
        let dpop_jkt = check_dpop_jkt(client, params.dpop_jkt)?;
        let action = check_authorization_details(params.authorization_details)?;
        let binding_message = params
            .binding_message
            .map(check_binding_message)
            .transpose()?;
        let expires_in = check_requested_expiry(&self.policy, params.requested_expiry.as_deref())?;
        let acr_values = params.acr_values.map(check_acr_values).transpose()?;
        let hinted = self
            .resolve_hint(
                client,
                params.login_hint,
                params.id_token_hint,
                params.login_hint_token,
                now,
            )
            .await?;
        // A user code is a person's (CIBA §7.1); a group has none.
        if let Hinted::Approver(approver) = &hinted {
            self.check_user_code(client, approver, params.user_code.as_deref(), now)
                .await?;
        }
        let addressing = self.addressing(client, &hinted, &action, now).await?;
        self.insert(
            client,
            hinted.approver(),
            addressing,
            scope,
            binding_message,
            acr_values,
            action,
            Delivery {
                notification_token,
                dpop_jkt,
            },
            expires_in,
            now,
        )
        .await
    }

    /// CIBA §7.1 `user_code`: required, and correct, when the approver's policy asks for one. A
    /// client that gives [`USER_CODE_TRIES`] wrong codes for an approver within
    /// [`USER_CODE_LOCK_MS`] has its codes for them refused, right or wrong, until that long after
    /// the last wrong one: guessing a six-character code takes years.
    async fn check_user_code(
        &self,
        client: &Client,
        approver: &Approver,
        code: Option<&str>,
        now: Millis,
    ) -> Result<(), CibaError> {
        if !approver.requires_user_code {
            return Ok(());
        }
        let code = code.ok_or(CibaError::MissingUserCode)?;
        let since = now - USER_CODE_LOCK_MS;
        let failures = self
            .store
            .user_code_failures(&client.id, &approver.id, since)
            .await?;
        if let Some((count, last)) = failures.filter(|(count, _)| *count >= USER_CODE_TRIES) {
            tracing::warn!(client_id = %client.id, approver_id = %approver.id, count, "user codes refused after repeated wrong ones");
            return Err(CibaError::InvalidUserCode(format!(
                "too many wrong user codes from this client for this approver: codes are refused \
                 for {} more minutes",
                (last + USER_CODE_LOCK_MS - now + 59_999) / 60_000
            )));
        }
        if approver.user_code_matches(code) {
            if failures.is_some() {
                self.store
                    .clear_user_code_failures(&client.id, &approver.id)
                    .await?;
            }
            Ok(())
        } else {
            self.store
                .record_user_code_failure(&client.id, &approver.id, now, since)
                .await?;
            Err(CibaError::InvalidUserCode(
                "the user_code is not correct".into(),
            ))
        }
    }

    /// Who decides the request: the person or group the hint named, unless a policy governs the
    /// action; then the policy's group (without the person the agent acts for: nobody approves
    /// their own request) or, if it names none, those the hint named, and as many of them as the
    /// policy asks must approve.
    async fn addressing(
        &self,
        client: &Client,
        hinted: &Hinted,
        action: &AgentAction,
        now: Millis,
    ) -> Result<Addressing, CibaError> {
        let policies = self.policies.newest();
        let policy = quorum::governing(&policies, &client.id, action);
        let group = hinted.group();
        let delegations = self.delegations.current();
        // The common case, with nothing to look at: one approver, alone.
        if let (None, Hinted::Approver(approver)) = (policy, hinted) {
            if !delegations.iter().any(|d| d.approver_id == approver.id) {
                return Ok(Addressing::approver(&approver.id));
            }
        }
        let Some(policy) = policy else {
            let (approver_id, members) = match hinted {
                Hinted::Approver(approver) => {
                    (Some(approver.id.clone()), vec![approver.id.clone()])
                }
                Hinted::Group(group) => (None, self.store.enabled_members(&group.id).await?),
            };
            let deciders = delegations::apply(&delegations, members, None, now);
            if deciders.addressees.is_empty() {
                return Err(CibaError::UnknownUserId(
                    "the group has no active members".into(),
                ));
            }
            return Ok(Addressing {
                approver_id,
                group_id: group.map(|g| g.id.clone()),
                rule: None,
                addressees: deciders.addressees,
                on_behalf: deciders.on_behalf,
            });
        };
        let requester = hinted.approver().map(|a| a.id.as_str());
        let addressees = match (&policy.group_id, group) {
            (Some(approving), _) => {
                let mut members = self.store.enabled_members(approving).await?;
                members.retain(|m| Some(m.as_str()) != requester);
                members
            }
            (None, Some(group)) => self.store.enabled_members(&group.id).await?,
            (None, None) => requester.into_iter().map(str::to_owned).collect(),
        };
        // The requester is excluded only when others approve for them.
        let excluded = policy.group_id.as_ref().and(requester);
        let deciders = delegations::apply(&delegations, addressees, excluded, now);
        let addressees = deciders.addressees;
        if (addressees.len() as i64) < policy.approvals {
            tracing::warn!(client_id = %client.id, policy = %policy.id, version = policy.version,
                "refused a backchannel request: its policy asks for more approvers than it has");
            return Err(CibaError::AccessDenied(format!(
                "the approval policy {:?} asks for {} approvals by distinct people, and only {} \
                 can approve this request",
                policy.name,
                policy.approvals,
                addressees.len()
            )));
        }
        Ok(Addressing {
            approver_id: requester.map(str::to_owned),
            group_id: group.map(|g| g.id.clone()),
            rule: Some(policy.rule()),
            addressees,
            on_behalf: deciders.on_behalf,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert(
        &self,
        client: &Client,
        named: Option<&Approver>,
        addressing: Addressing,
        scope: String,
        binding_message: Option<String>,
        acr_values: Option<String>,
        action: AgentAction,
        delivery: Delivery,
        expires_in: i64,
        now: Millis,
    ) -> Result<Acknowledgement, CibaError> {
        let row = AuthRequest::new(
            new_auth_req_id(now),
            client.id.clone(),
            addressing,
            scope,
            binding_message,
            acr_values,
            action,
            delivery.notification_token,
            delivery.dpop_jkt,
            now,
            now + expires_in * 1000,
            self.policy.poll_interval_secs,
        );
        let (id, expires_at) = (row.id.clone(), row.expires_at);
        // The notifiers listen (Web Push always, e-mail when configured); the check keeps a domain
        // without listeners, such as a test's, from building events nobody reads.
        let events = if self.events.receiver_count() > 0 {
            self.announcements(&row, client, named).await?
        } else {
            Vec::new()
        };
        let (row_approver, addressees) = (row.approver_id.clone(), row.addressees.clone());
        match self.inserts.insert(row).await? {
            InsertOutcome::Inserted => {}
            InsertOutcome::TooManyPending => {
                tracing::warn!(client_id = %client.id, limit = self.policy.max_pending_per_approver,
                    "refused a backchannel request: too many pending requests for this approver");
                return Err(CibaError::AccessDenied(format!(
                    "limit reached: this client already has {} pending requests for this approver \
                     or group (COUNTERSIGN_MAX_PENDING_PER_APPROVER); wait for a decision or expiry",
                    self.policy.max_pending_per_approver
                )));
            }
            InsertOutcome::TooManyPerMinute => {
                tracing::warn!(client_id = %client.id, limit = self.policy.max_requests_per_minute,
                    "refused a backchannel request: too many requests this minute");
                return Err(CibaError::AccessDenied(format!(
                    "limit reached: at most {} new requests per minute for this client \
                     (COUNTERSIGN_MAX_REQUESTS_PER_MINUTE)",
                    self.policy.max_requests_per_minute
                )));
            }
        }
        self.pending.insert_pending(
            &id,
            &client.id,
            row_approver.as_deref(),
            expires_at,
            self.policy.poll_interval_secs,
        );
        for addressee in &addressees {
            self.inbox_changed(addressee);
        }
        for event in events {
            let _ = self.events.send(event);
        }
        tracing::info!(client_id = %client.id, addressees = addressees.len(), "backchannel request pending");
        Ok(Acknowledgement {
            auth_req_id: id,
            expires_in,
            // CIBA §7.3: interval applies to poll and ping clients; push clients never poll.
            interval: (client.delivery_mode != DeliveryMode::Push)
                .then_some(self.policy.poll_interval_secs),
        })
    }

    /// What each addressee of `row` is told of it. A request to the approver the hint `named`
    /// reads nothing more.
    pub(super) async fn announcements(
        &self,
        row: &AuthRequest,
        client: &Client,
        named: Option<&Approver>,
    ) -> Result<Vec<RequestCreated>, CibaError> {
        if let (false, Some(approver)) = (row.is_shared(), named) {
            return Ok(vec![announcement(row, client, approver)]);
        }
        let mut events = Vec::with_capacity(row.addressees.len());
        for addressee in &row.addressees {
            let Some(approver) = approvers::by_id(&self.store, addressee).await? else {
                continue;
            };
            events.push(announcement(row, client, &approver));
        }
        Ok(events)
    }
}

fn announcement(row: &AuthRequest, client: &Client, approver: &Approver) -> RequestCreated {
    RequestCreated {
        shared: row.is_shared(),
        auth_req_id: row.id.clone(),
        approver_id: approver.id.clone(),
        approver_email: approver.email.clone(),
        approver_name: approver.name.clone(),
        client_name: client.name.clone(),
        action: row.action.action.clone(),
        target: row.action.target.clone(),
        expires_at: row.expires_at,
    }
}
