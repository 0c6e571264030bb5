//! Minting the tokens an approved request earns: an OpenID Connect ID token and a short-lived JWT access
//! token (RFC 9068) carrying exactly the approved `authorization_details`. No refresh token: an approval
//! covers one action, so there is nothing to refresh.
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{
    auth_request::AuthRequest,
    record::{APPROVALS_CLAIM, DECISION_CLAIM},
    Ciba, CibaError,
};
use crate::{
    clock::{secs, Millis},
    identity::approvers::Approver,
    secrets::{base64url, random_token, sha256},
    store::decisions::DecisionRow,
};

/// CIBA §10.1.1 / RFC 6749 §5.1, plus RFC 9396 §7's `authorization_details`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// `Bearer`, or `DPoP` when bound (RFC 9449 §5).
    pub token_type: &'static str,
    pub expires_in: i64,
    pub id_token: String,
    pub scope: String,
    /// The approved `agent_action`, as the approver saw it.
    #[schema(value_type = Vec<Object>)]
    pub authorization_details: Value,
}

/// The access token's `typ` (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// The ID token's `typ`: OpenID Connect names none, so the generic one; every other JWT this server
/// signs has a type of its own, so none passes for an ID token (RFC 8725 §3.11).
pub const ID_TOKEN_TYPE: &str = "JWT";

pub const AUTH_REQ_ID_CLAIM: &str = "urn:openid:params:jwt:claim:auth_req_id";

impl Ciba {
    /// Tokens for `request`, approved by `approver` in the verified decision record `decision`; `jti`
    /// identifies the access token for revocation. With `dpop_key` (a JWK thumbprint) the access
    /// token is sender-constrained: RFC 9449 §6.1's `cnf.jkt`, and `token_type` DPoP (§5).
    pub(crate) fn mint_tokens(
        &self,
        request: &AuthRequest,
        approver: &Approver,
        decisions: &[DecisionRow],
        jti: &str,
        dpop_key: Option<&str>,
        now: Millis,
    ) -> Result<TokenResponse, CibaError> {
        let decision = decisions
            .last()
            .ok_or_else(|| CibaError::InvalidGrant("no approval record".into()))?;
        // A quorum's tokens name every approval (oldest first); the decision claim names the one
        // that completed it.
        let approvals = (decisions.len() > 1)
            .then(|| json!(decisions.iter().map(|d| &d.record_hash).collect::<Vec<_>>()));
        let iat = secs(now);
        // The moment of the passkey assertion, as sealed in the record (the request's own column is
        // not covered by it).
        let auth_time = secs(decision.decided_at);
        let details: Value = serde_json::from_str(&request.authorization_details).map_err(|e| {
            CibaError::InvalidGrant(format!("stored authorization_details unreadable: {e}"))
        })?;
        let approval = request.approval();
        let amr = approval.map_or(json!([]), |a| json!(a.amr));
        let acr = approval.map_or(Value::Null, |a| json!(a.acr));
        let access_ttl = self.policy.access_token_ttl_secs;
        let audience = access_token_audience(&details, &self.issuer);

        let mut at = Map::new();
        at.insert("iss".into(), json!(self.issuer));
        at.insert("sub".into(), json!(approver.id));
        at.insert("aud".into(), audience);
        at.insert("client_id".into(), json!(request.client_id));
        at.insert("iat".into(), json!(iat));
        at.insert("exp".into(), json!(iat + access_ttl));
        at.insert("jti".into(), json!(jti));
        at.insert("scope".into(), json!(request.scope));
        at.insert("auth_time".into(), json!(auth_time));
        at.insert("acr".into(), acr.clone());
        at.insert("amr".into(), amr.clone());
        at.insert("authorization_details".into(), details.clone());
        at.insert(DECISION_CLAIM.into(), json!(decision.record_hash));
        if let Some(approvals) = &approvals {
            at.insert(APPROVALS_CLAIM.into(), approvals.clone());
        }
        if let Some(jkt) = dpop_key {
            at.insert("cnf".into(), json!({ "jkt": jkt }));
        }
        let access_token = self.keys.sign(ACCESS_TOKEN_TYPE, at)?;

        let mut id = Map::new();
        id.insert("iss".into(), json!(self.issuer));
        id.insert("sub".into(), json!(approver.id));
        id.insert("aud".into(), json!(request.client_id));
        id.insert("iat".into(), json!(iat));
        id.insert("exp".into(), json!(iat + self.policy.id_token_ttl_secs));
        id.insert("auth_time".into(), json!(auth_time));
        id.insert("acr".into(), acr);
        id.insert("amr".into(), amr);
        id.insert("jti".into(), json!(random_token(16)));
        id.insert(AUTH_REQ_ID_CLAIM.into(), json!(request.id));
        id.insert("at_hash".into(), json!(left_half_hash(&access_token)));
        id.insert(DECISION_CLAIM.into(), json!(decision.record_hash));
        if let Some(approvals) = approvals {
            id.insert(APPROVALS_CLAIM.into(), approvals);
        }
        let scopes: Vec<&str> = request.scope.split(' ').collect();
        if scopes.contains(&"email") {
            id.insert("email".into(), json!(approver.email));
        }
        if scopes.contains(&"profile") {
            id.insert("name".into(), json!(approver.name));
        }
        let id_token = self.keys.sign(ID_TOKEN_TYPE, id)?;

        Ok(TokenResponse {
            access_token,
            token_type: if dpop_key.is_some() { "DPoP" } else { "Bearer" },
            expires_in: access_ttl,
            id_token,
            scope: request.scope.clone(),
            authorization_details: details,
        })
    }
}

impl Ciba {
    /// The claims of `token` if it is an access token this server issued, unexpired and not revoked
    /// (RFC 7662: a replayed grant's tokens become inactive).
    pub async fn active_access_token(
        &self,
        token: &str,
    ) -> Result<Option<Map<String, Value>>, CibaError> {
        let Ok(claims) = self.keys.verify(token, ACCESS_TOKEN_TYPE) else {
            return Ok(None);
        };
        let now = secs(self.clock.now());
        if claims
            .get("exp")
            .and_then(Value::as_i64)
            .is_none_or(|exp| exp <= now)
        {
            return Ok(None);
        }
        let Some(jti) = claims.get("jti").and_then(Value::as_str) else {
            return Ok(None);
        };
        let live = self.store.token_is_live(jti).await?;
        Ok(live.then_some(claims))
    }
}

/// What revoking a token did (RFC 7009).
#[derive(Debug, PartialEq, Eq)]
pub enum Revocation {
    /// It is revoked now (or was already).
    Revoked,
    /// Not an access token of this server's: nothing to do.
    NotOurs,
    /// Issued to another client, which alone may revoke it (§2.1).
    OtherClient,
}

impl Ciba {
    /// Revokes the access token `token` on behalf of `client_id`, to whom it must have been issued.
    pub async fn revoke_access_token(
        &self,
        client_id: &str,
        token: &str,
    ) -> Result<Revocation, CibaError> {
        // Any key this server ever had: revoking a token whose key has left the JWKS is harmless.
        let Ok(claims) = self.keys.verify_issued(token, ACCESS_TOKEN_TYPE) else {
            return Ok(Revocation::NotOurs);
        };
        let Some(jti) = claims.get("jti").and_then(Value::as_str) else {
            return Ok(Revocation::NotOurs);
        };
        if claims.get("client_id").and_then(Value::as_str) != Some(client_id) {
            return Ok(Revocation::OtherClient);
        }
        if self.store.revoke_token(jti, self.clock.now()).await? {
            tracing::info!(client_id, "access token revoked by its client");
        }
        Ok(Revocation::Revoked)
    }
}

/// OIDC Core §3.1.3.6 `at_hash` for ES256: base64url of the left half of SHA-256 of the token.
fn left_half_hash(token: &str) -> String {
    base64url(&sha256(token.as_bytes())[..16])
}

/// RFC 9068 §3 wants `aud` to name the resource server: the actions' `resource` when given, otherwise
/// this server (where the token can be introspected).
fn access_token_audience(details: &Value, issuer: &str) -> Value {
    let resources: Vec<&str> = details
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("resource").and_then(Value::as_str))
        .collect();
    match resources.as_slice() {
        [] => json!(issuer),
        [one] => json!(one),
        many => json!(many),
    }
}
