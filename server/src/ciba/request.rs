//! Starting a backchannel authentication request (CIBA §7.1 validation, §7.3 acknowledgement).
use serde::Serialize;
use serde_json::Value;

use super::{
    action::AgentAction,
    auth_request::AuthRequest,
    checks::{
        check_acr_values, check_authorization_details, check_binding_message, check_dpop_jkt,
        check_notification_token, check_requested_expiry, check_scope,
    },
    ids::new_auth_req_id,
    Ciba, CibaError, Client, DeliveryMode,
};
use crate::{clock::Millis, identity::approvers::Approver, store::request_inserts::InsertOutcome};

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

/// Announced when a request starts waiting for its approver (for notifications).
#[derive(Debug, Clone)]
pub struct RequestCreated {
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
        let approver = self
            .resolve_hint(
                client,
                params.login_hint,
                params.id_token_hint,
                params.login_hint_token,
                now,
            )
            .await?;
        self.check_user_code(client, &approver, params.user_code.as_deref(), now)
            .await?;
        self.insert(
            client,
            &approver,
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

    #[allow(clippy::too_many_arguments)]
    async fn insert(
        &self,
        client: &Client,
        approver: &Approver,
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
            approver.id.clone(),
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
        let event = (self.events.receiver_count() > 0).then(|| RequestCreated {
            auth_req_id: id.clone(),
            approver_id: approver.id.clone(),
            approver_email: approver.email.clone(),
            approver_name: approver.name.clone(),
            client_name: client.name.clone(),
            action: row.action.action.clone(),
            target: row.action.target.clone(),
            expires_at,
        });
        match self.inserts.insert(row).await? {
            InsertOutcome::Inserted => {}
            InsertOutcome::TooManyPending => {
                tracing::warn!(client_id = %client.id, approver_id = %approver.id, limit = self.policy.max_pending_per_approver,
                    "refused a backchannel request: too many pending requests for this approver");
                return Err(CibaError::AccessDenied(format!(
                    "limit reached: this client already has {} pending requests for this approver \
                     (COUNTERSIGN_MAX_PENDING_PER_APPROVER); wait for a decision or expiry",
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
            &approver.id,
            expires_at,
            self.policy.poll_interval_secs,
        );
        self.inbox_changed(&approver.id);
        if let Some(event) = event {
            let _ = self.events.send(event);
        }
        tracing::info!(client_id = %client.id, approver_id = %approver.id, "backchannel request pending");
        Ok(Acknowledgement {
            auth_req_id: id,
            expires_in,
            // CIBA §7.3: interval applies to poll and ping clients; push clients never poll.
            interval: (client.delivery_mode != DeliveryMode::Push)
                .then_some(self.policy.poll_interval_secs),
        })
    }
}
