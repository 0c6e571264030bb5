//! `POST /bc-authorize`, the backchannel authentication endpoint (CIBA §7): parse, authenticate the
//! client, read the parameters (from the form or a signed request, §7.1.1), start the request, reply.
use axum::{extract::State, http::header, response::IntoResponse, Json};
use serde_json::{Map, Value};

use super::{
    client_auth::{audience_includes, authenticate},
    error::OAuthError,
    form::OAuthForm,
    replay::Replay,
    AppState,
};
use crate::ciba::{clients::jwt::JwtUse, BackchannelParams, Client, RawDetails};

/// CIBA §7: start a request for one approver's decision on one action.
#[utoipa::path(
    post,
    path = "/bc-authorize",
    tag = "CIBA",
    request_body(content = super::openapi::BackchannelForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Accepted (CIBA §7.3): poll the token endpoint with auth_req_id", body = crate::ciba::request::Acknowledgement),
        (status = 400, description = "CIBA §13: invalid_request, invalid_scope, expired_login_hint_token, unknown_user_id, unauthorized_client, missing_user_code, invalid_user_code, invalid_binding_message, invalid_authorization_details", body = super::error::ErrorBody),
        (status = 401, description = "invalid_client", body = super::error::ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 403, description = "access_denied: a limit per approver or per client was reached", body = super::error::ErrorBody),
        (status = 429, description = "temporarily_unavailable: too many refused requests from this address", body = super::error::ErrorBody, headers(("Retry-After" = u64))),
    ),
    security((), ("client_secret_basic" = []))
)]
pub async fn bc_authorize(
    State(state): State<AppState>,
    mut form: OAuthForm,
) -> Result<impl IntoResponse, OAuthError> {
    let client = authenticate(&state, &mut form).await?;
    let params = match form.take("request") {
        Some(request) => {
            if let Some(extra) = form.names().find(|n| PARAMETERS.contains(n)) {
                return Err(OAuthError::invalid_request(format!(
                    "with a signed request, {extra} must be inside the request JWT (CIBA §7.1.1)"
                )));
            }
            signed_params(&state, &client, &request).await?
        }
        None => BackchannelParams {
            scope: form.take("scope"),
            login_hint: form.take("login_hint"),
            id_token_hint: form.take("id_token_hint"),
            login_hint_token: form.take("login_hint_token"),
            binding_message: form.take("binding_message"),
            user_code: form.take("user_code"),
            requested_expiry: form.take("requested_expiry"),
            acr_values: form.take("acr_values"),
            authorization_details: form.take("authorization_details").map(RawDetails::Text),
            client_notification_token: form.take("client_notification_token"),
            dpop_jkt: form.take("dpop_jkt"),
        },
    };
    let ack = state.ciba.start_request(&client, params).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(ack)))
}

/// The authentication request's parameters, as the form carries them (the OpenAPI description lists
/// the same, see `openapi`).
pub(super) const PARAMETERS: &[&str] = &[
    "scope",
    "login_hint",
    "id_token_hint",
    "login_hint_token",
    "binding_message",
    "user_code",
    "requested_expiry",
    "acr_values",
    "authorization_details",
    "client_notification_token",
    "dpop_jkt",
];

/// CIBA §7.1.1: a JWS signed with the client's key, with aud (this issuer), iss (the client), exp, iat,
/// nbf and jti, the parameters as claims.
async fn signed_params(
    state: &AppState,
    client: &Client,
    request: &str,
) -> Result<BackchannelParams, OAuthError> {
    let now = state.ciba.now();
    let claims = client
        .verify_jwt(request, JwtUse::SignedRequest, now)
        .map_err(|e| OAuthError::invalid_request(format!("signed request rejected: {e}")))?;
    let reject = |why: &str| OAuthError::invalid_request(format!("signed request rejected: {why}"));
    let aud_ok = audience_includes(&claims, &[state.endpoints.issuer.as_str()]);
    if !aud_ok {
        return Err(reject("aud must be this server's issuer"));
    }
    if claims.get("iss").and_then(Value::as_str) != Some(client.id.as_str()) {
        return Err(reject("iss must be the client_id"));
    }
    for required in ["iat", "nbf"] {
        if !claims.get(required).is_some_and(Value::is_number) {
            return Err(reject(&format!("the {required} claim is required")));
        }
    }
    match state.replay.accept_once(&client.id, &claims, now).await {
        Ok(()) => {}
        Err(Replay::MissingJti) => {
            return Err(reject("a jti claim of 1 to 256 characters is required"))
        }
        Err(Replay::Repeated) => return Err(reject("this signed request was already used")),
        Err(Replay::Unavailable(e)) => return Err(OAuthError::internal(e)),
    }
    let text = |name: &str| claim_text(&claims, name);
    Ok(BackchannelParams {
        scope: text("scope")?,
        login_hint: text("login_hint")?,
        id_token_hint: text("id_token_hint")?,
        login_hint_token: text("login_hint_token")?,
        binding_message: text("binding_message")?,
        user_code: text("user_code")?,
        requested_expiry: match claims.get("requested_expiry") {
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => text("requested_expiry")?,
        },
        acr_values: text("acr_values")?,
        authorization_details: claims
            .get("authorization_details")
            .cloned()
            .map(|v| match v {
                Value::String(s) => RawDetails::Text(s),
                other => RawDetails::Json(other),
            }),
        client_notification_token: text("client_notification_token")?,
        dpop_jkt: text("dpop_jkt")?,
    })
}

fn claim_text(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, OAuthError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(OAuthError::invalid_request(format!(
            "signed request rejected: {name} must be a string"
        ))),
    }
}
