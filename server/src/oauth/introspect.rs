//! `POST /introspect` (RFC 7662): lets a resource server (or the agent) learn whether an access token is
//! still active, which is how the revocation of a replayed grant's tokens becomes visible.
use axum::{extract::State, http::header, response::IntoResponse, Json};
use serde_json::{json, Value};

use super::{client_auth::authenticate, error::OAuthError, form::OAuthForm, AppState};
use crate::clock::secs;

pub async fn introspect(
    State(state): State<AppState>,
    mut form: OAuthForm,
) -> Result<impl IntoResponse, OAuthError> {
    authenticate(&state, &mut form).await?;
    let token = form
        .take("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let body = match active_claims(&state, &token).await? {
        Some(mut claims) => {
            claims.insert("active".into(), json!(true));
            claims.insert("token_type".into(), json!("Bearer"));
            Value::Object(claims)
        }
        None => json!({ "active": false }),
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)))
}

async fn active_claims(
    state: &AppState,
    token: &str,
) -> Result<Option<serde_json::Map<String, Value>>, OAuthError> {
    let Ok(claims) = state.ciba.keys().verify(token) else {
        return Ok(None);
    };
    let now = secs(state.ciba.now());
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
    let live = state
        .ciba
        .store()
        .token_is_live(jti)
        .await
        .map_err(OAuthError::internal)?;
    Ok(live.then_some(claims))
}
