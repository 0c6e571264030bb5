//! Starting a backchannel authentication request (CIBA §7.1 validation, §7.3 acknowledgement).
use serde::Serialize;
use serde_json::Value;

use super::{
    action::{self, AgentAction},
    auth_request::AuthRequest,
    Ciba, CibaError, Client, DeliveryMode,
};
use crate::{
    clock::Millis,
    identity::approvers::{self, Approver},
    store::auth_requests::InsertOutcome,
};

/// Longest binding message accepted, in characters: it must fit on a phone screen and on the agent's.
pub const MAX_BINDING_MESSAGE: usize = 100;
/// CIBA §7.1 advises keeping `client_notification_token` within 1024 characters.
const MAX_NOTIFICATION_TOKEN: usize = 1024;
const MAX_HINT: usize = 4096;

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

/// CIBA §7.3: the successful acknowledgement.
#[derive(Debug, Serialize)]
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
        let scope = validate_scope(client, params.scope.as_deref())?;
        let notification_token =
            validate_notification_token(client, params.client_notification_token)?;
        let action = match params.authorization_details {
            None => {
                return Err(CibaError::InvalidRequest(
                    "authorization_details is required: one agent_action naming the action, target and consequence"
                        .into(),
                ))
            }
            Some(RawDetails::Text(text)) => action::parse_authorization_details(&text),
            Some(RawDetails::Json(value)) => action::parse_value(value),
        }
        .map_err(|e| CibaError::InvalidAuthorizationDetails(e.0))?;
        let binding_message = params
            .binding_message
            .map(validate_binding_message)
            .transpose()?;
        let expires_in = self.expiry(params.requested_expiry.as_deref())?;
        let acr_values = params.acr_values.map(validate_acr_values).transpose()?;
        let approver = self
            .resolve_hint(
                client,
                params.login_hint,
                params.id_token_hint,
                params.login_hint_token,
                now,
            )
            .await?;
        if approver.requires_user_code {
            match params.user_code.as_deref() {
                None => return Err(CibaError::MissingUserCode),
                Some(code) if !approver.user_code_matches(code) => {
                    return Err(CibaError::InvalidUserCode)
                }
                Some(_) => {}
            }
        }
        self.insert(
            client,
            &approver,
            scope,
            binding_message,
            acr_values,
            &action,
            notification_token,
            expires_in,
            now,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert(
        &self,
        client: &Client,
        approver: &Approver,
        scope: String,
        binding_message: Option<String>,
        acr_values: Option<String>,
        action: &AgentAction,
        notification_token: Option<String>,
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
            action.clone(),
            notification_token,
            now,
            now + expires_in * 1000,
            self.policy.poll_interval_secs,
        );
        match self.inserts.insert(row.clone()).await? {
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
        self.pending.insert(&row);
        // The notifiers listen (Web Push always, e-mail when configured); the check keeps a domain
        // without listeners, such as a test's, from building events nobody reads.
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(RequestCreated {
                auth_req_id: row.id.clone(),
                approver_id: approver.id.clone(),
                approver_email: approver.email.clone(),
                approver_name: approver.name.clone(),
                client_name: client.name.clone(),
                action: action.action.clone(),
                target: action.target.clone(),
                expires_at: row.expires_at,
            });
        }
        tracing::info!(client_id = %client.id, approver_id = %approver.id, "backchannel request pending");
        Ok(Acknowledgement {
            auth_req_id: row.id,
            expires_in,
            // CIBA §7.3: interval applies to poll and ping clients; push clients never poll.
            interval: (client.delivery_mode != DeliveryMode::Push)
                .then_some(self.policy.poll_interval_secs),
        })
    }

    fn expiry(&self, requested: Option<&str>) -> Result<i64, CibaError> {
        let Some(raw) = requested else {
            return Ok(self.policy.default_expiry_secs);
        };
        let secs: i64 = raw.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
            CibaError::InvalidRequest(
                "requested_expiry must be a positive integer (seconds)".into(),
            )
        })?;
        Ok(secs.min(self.policy.max_expiry_secs))
    }

    /// CIBA §7.1: exactly one hint identifies the approver.
    async fn resolve_hint(
        &self,
        client: &Client,
        login_hint: Option<String>,
        id_token_hint: Option<String>,
        login_hint_token: Option<String>,
        now: Millis,
    ) -> Result<Approver, CibaError> {
        let unknown = || CibaError::UnknownUserId("no approver matches the hint".into());
        let given = [&login_hint, &id_token_hint, &login_hint_token]
            .iter()
            .filter(|h| h.is_some())
            .count();
        if given != 1 {
            return Err(CibaError::InvalidRequest(
                "exactly one of login_hint, id_token_hint and login_hint_token is required".into(),
            ));
        }
        if [&login_hint, &id_token_hint, &login_hint_token]
            .iter()
            .any(|h| h.as_ref().is_some_and(|h| h.len() > MAX_HINT))
        {
            return Err(CibaError::InvalidRequest("the hint is too long".into()));
        }
        let approver = if let Some(email) = login_hint {
            self.approvers.by_email(&self.store, &email, now).await?
        } else if let Some(token) = id_token_hint {
            let sub = self.id_token_hint_subject(client, &token)?;
            approvers::by_id(&self.store, &sub).await?
        } else if let Some(token) = login_hint_token {
            let email = login_hint_token_email(client, &token, now)?;
            self.approvers.by_email(&self.store, &email, now).await?
        } else {
            None
        };
        approver.filter(|a| !a.disabled).ok_or_else(unknown)
    }

    /// An `id_token_hint` must be an ID token this server issued to this client; it may have expired.
    fn id_token_hint_subject(&self, client: &Client, token: &str) -> Result<String, CibaError> {
        let bad = || {
            CibaError::InvalidRequest(
                "id_token_hint is not an ID token issued by this server".into(),
            )
        };
        let claims = self.keys.verify(token).map_err(|_| bad())?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(bad());
        }
        let for_client = match claims.get("aud") {
            Some(Value::String(aud)) => aud == &client.id,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(client.id.as_str())),
            _ => false,
        };
        if !for_client {
            return Err(CibaError::InvalidRequest(
                "id_token_hint was issued to another client".into(),
            ));
        }
        claims
            .get("sub")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(bad)
    }
}

/// A `login_hint_token` is a JWT signed by the client's registered key whose `sub_id` names the approver
/// by email (the subject-identifier shape of RFC 9493: `{"format": "email", "email": ...}`).
fn login_hint_token_email(client: &Client, token: &str, now: Millis) -> Result<String, CibaError> {
    use super::clients::JwtRejection;
    let claims = client.verify_jwt(token, now).map_err(|e| match e {
        JwtRejection::Expired => CibaError::ExpiredLoginHintToken,
        other => CibaError::InvalidRequest(format!("login_hint_token rejected: {other}")),
    })?;
    let sub_id = claims.get("sub_id");
    match (sub_id.and_then(|s| s.get("format")).and_then(Value::as_str), sub_id.and_then(|s| s.get("email"))) {
        (Some("email"), Some(Value::String(email))) => Ok(email.clone()),
        _ => Err(CibaError::InvalidRequest(
            "login_hint_token needs a sub_id claim of the form {\"format\": \"email\", \"email\": ...}".into(),
        )),
    }
}

/// CIBA §7.1: `scope` is required and must include `openid`; the rest must be allowed for the client.
fn validate_scope(client: &Client, scope: Option<&str>) -> Result<String, CibaError> {
    let scope = scope.ok_or_else(|| {
        CibaError::InvalidRequest("scope is required and must include openid".into())
    })?;
    let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    if !scopes.contains(&"openid") {
        return Err(CibaError::InvalidScope("scope must include openid".into()));
    }
    if let Some(bad) = scopes.iter().find(|s| !client.may_request_scope(s)) {
        return Err(CibaError::InvalidScope(format!(
            "scope {bad:?} is not allowed for this client"
        )));
    }
    let mut unique = scopes;
    unique.dedup();
    Ok(unique.join(" "))
}

/// Shown on both devices so the person can match them: short, printable, no invisible characters that
/// could make two different messages look alike.
fn validate_binding_message(message: String) -> Result<String, CibaError> {
    let invalid = |why: &str| CibaError::InvalidBindingMessage(format!("binding_message {why}"));
    if message.trim().is_empty() {
        return Err(invalid("must not be empty"));
    }
    if message.chars().count() > MAX_BINDING_MESSAGE {
        return Err(invalid(&format!(
            "must be at most {MAX_BINDING_MESSAGE} characters"
        )));
    }
    if message.chars().any(app::text::is_invisible) {
        return Err(invalid(
            "must be printable text without control or invisible formatting characters",
        ));
    }
    Ok(message)
}

fn validate_acr_values(acr: String) -> Result<String, CibaError> {
    if acr.len() > 512 || acr.chars().any(|c| c.is_control()) {
        return Err(CibaError::InvalidRequest(
            "acr_values must be space-separated printable values".into(),
        ));
    }
    Ok(acr)
}

fn validate_notification_token(
    client: &Client,
    token: Option<String>,
) -> Result<Option<String>, CibaError> {
    match (client.delivery_mode, token) {
        (DeliveryMode::Poll, _) => Ok(None),
        (_, None) => Err(CibaError::InvalidRequest(
            "client_notification_token is required for ping and push clients (CIBA §7.1)".into(),
        )),
        (_, Some(t))
            if t.len() > MAX_NOTIFICATION_TOKEN
                || t.chars().any(|c| c.is_control() || c == ' ') =>
        {
            Err(CibaError::InvalidRequest(
                "client_notification_token must be at most 1024 printable characters".into(),
            ))
        }
        (_, Some(t)) => Ok(Some(t)),
    }
}

/// CIBA §7.3: opaque and unguessable: 256 random bits. A millisecond timestamp in hex goes in front so
/// that new ids sort after old ones: inserts then append to the primary key instead of touching a random
/// page each, which is most of the cost of a write burst. The time it reveals is the client's own.
fn new_auth_req_id(now: Millis) -> String {
    format!(
        "{now:012x}{}",
        crate::secrets::base64url(&crate::secrets::random_bytes::<32>())
    )
}

/// The request page's reference to a request: the auth_req_id's time prefix and 132 bits of a one-way
/// hash of it. Links in notifications, browser history and logs then never carry the handle the agent
/// redeems at the token endpoint, and no extra column or index burdens the insert path: a reference is
/// resolved among the signed-in approver's requests from that millisecond (`ApprovalApp`).
pub fn page_ref(auth_req_id: &str) -> String {
    let prefix = auth_req_id.get(..12).unwrap_or_default();
    let hash =
        crate::secrets::sha256(format!("countersign/request-page/v1:{auth_req_id}").as_bytes());
    format!("{prefix}{}", &crate::secrets::base64url(&hash)[..22])
}

/// The creation time (Unix ms) a page reference names, if it is well-formed.
pub fn page_ref_time(page_ref: &str) -> Option<Millis> {
    if page_ref.len() != 34 || !page_ref.is_ascii() {
        return None;
    }
    i64::from_str_radix(&page_ref[..12], 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_refs_name_the_millisecond_but_not_the_auth_req_id() {
        let id = new_auth_req_id(1_795_000_000_123);
        let reference = page_ref(&id);
        assert_eq!(reference.len(), 34);
        assert_eq!(page_ref_time(&reference), Some(1_795_000_000_123));
        assert_eq!(reference, page_ref(&id), "stable");
        assert_ne!(reference, page_ref(&new_auth_req_id(1_795_000_000_123)));
        assert!(!reference.contains(&id[12..20]));
        assert_eq!(page_ref_time("short"), None);
    }

    #[test]
    fn binding_messages_must_be_short_printable_and_visible() {
        // CIBA §7.1 binding_message; §13 invalid_binding_message.
        assert_eq!(validate_binding_message("W4SCT".into()).unwrap(), "W4SCT");
        for bad in [
            "",
            "   ",
            "line\nbreak",
            "bell\u{7}",
            "rtl\u{202E}override",
            "zero\u{200B}width",
        ] {
            assert!(
                matches!(
                    validate_binding_message(bad.into()),
                    Err(CibaError::InvalidBindingMessage(_))
                ),
                "{bad:?}"
            );
        }
        assert!(validate_binding_message("x".repeat(MAX_BINDING_MESSAGE)).is_ok());
        assert!(validate_binding_message("x".repeat(MAX_BINDING_MESSAGE + 1)).is_err());
    }
}
