//! `POST /introspect` (RFC 7662): lets a resource server learn whether an access token is still active
//! (not expired, not revoked by its client, not revoked because its grant was replayed) and what it
//! covers. Only clients registered as resource servers may ask (§2.1: no token scanning by agents).
use axum::{extract::State, http::header, response::IntoResponse, Json};
use serde_json::{json, Value};

use super::{client_auth::authenticate, error::OAuthError, form::OAuthForm, AppState};

/// RFC 7662: whether an access token is active, for resource servers.
#[utoipa::path(
    post,
    path = "/introspect",
    tag = "CIBA",
    request_body(content = super::openapi::TokenParameterForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "RFC 7662 §2.2", body = super::openapi::Introspection),
        (status = 400, description = "invalid_request; unauthorized_client (not a resource server)", body = super::error::ErrorBody),
        (status = 401, description = "invalid_client", body = super::error::ErrorBody, headers(("WWW-Authenticate" = String))),
    ),
    security((), ("client_secret_basic" = []))
)]
pub async fn introspect(
    State(state): State<AppState>,
    mut form: OAuthForm,
) -> Result<impl IntoResponse, OAuthError> {
    let client = authenticate(&state, &mut form).await?;
    if !client.resource_server {
        return Err(OAuthError::unauthorized_client(
            "only resource servers may introspect tokens (client create --resource-server)",
        ));
    }
    let token = form
        .take("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let active = state
        .ciba
        .active_access_token(&token)
        .await
        .map_err(OAuthError::internal)?;
    let body = match active {
        Some(mut claims) => {
            claims.insert("active".into(), json!(true));
            // RFC 9449 §6.2: a DPoP-bound token says so, and its `cnf` (already a claim) names the key.
            let token_type = if claims.contains_key("cnf") {
                "DPoP"
            } else {
                "Bearer"
            };
            claims.insert("token_type".into(), json!(token_type));
            Value::Object(claims)
        }
        None => json!({ "active": false }),
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)))
}
