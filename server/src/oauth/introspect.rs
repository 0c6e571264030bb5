//! `POST /introspect` (RFC 7662): lets a resource server learn whether an access token is still active
//! (not expired, not revoked by its client, not revoked because its grant was replayed) and what it
//! covers. Only clients registered as resource servers may ask (§2.1: no token scanning by agents).
use axum::{extract::State, http::header, response::IntoResponse, Json};
use serde_json::{json, Value};

use super::{client_auth::authenticate, error::OAuthError, form::OAuthForm, AppState};

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
