//! `POST /token` with the CIBA grant (§10.1; errors §11): authenticate, check any DPoP proof (RFC 9449
//! §5), then answer the poll. Every answer carries a fresh DPoP nonce (§8).
use axum::{
    extract::State,
    http::{header, Method},
    response::{IntoResponse, Response},
    Json,
};

use super::{
    client_auth::authenticate,
    discovery::CIBA_GRANT,
    dpop::NONCE_HEADER,
    error::{ErrorCode, OAuthError},
    form::OAuthForm,
    AppState,
};
use crate::ciba::DeliveryMode;

/// CIBA §10.1: redeem an approved request (poll mode, or after a ping).
#[utoipa::path(
    post,
    path = "/token",
    tag = "CIBA",
    request_body(content = super::openapi::TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The tokens (CIBA §10.1.1)", body = crate::ciba::tokens::TokenResponse, headers(("DPoP-Nonce" = String))),
        (status = 400, description = "CIBA §11: authorization_pending, slow_down, expired_token, access_denied; RFC 6749 §5.2: invalid_request, invalid_grant, unauthorized_client, unsupported_grant_type; RFC 9449: invalid_dpop_proof, use_dpop_nonce", body = super::error::ErrorBody, headers(("DPoP-Nonce" = String))),
        (status = 401, description = "invalid_client", body = super::error::ErrorBody, headers(("WWW-Authenticate" = String), ("DPoP-Nonce" = String))),
    ),
    security((), ("client_secret_basic" = []))
)]
pub async fn token(State(state): State<AppState>, form: OAuthForm) -> Response {
    let mut response = match answer(&state, form).await {
        Ok(response) => response,
        Err(err) => err.at_token_endpoint().into_response(),
    };
    let nonce = state.dpop.nonce(state.ciba.now());
    response.headers_mut().insert(NONCE_HEADER, nonce);
    response
}

async fn answer(state: &AppState, mut form: OAuthForm) -> Result<Response, OAuthError> {
    let grant_type = form
        .take("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let client = authenticate(state, &mut form).await?;
    if grant_type != CIBA_GRANT {
        return Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!("only {CIBA_GRANT} is supported"),
        ));
    }
    // CIBA §10.1: a push client receives its tokens and must not poll.
    if client.delivery_mode == DeliveryMode::Push {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "push-mode clients receive tokens by delivery",
        ));
    }
    let dpop_key = state
        .dpop
        .check(&form.headers, &Method::POST, state.ciba.now())?;
    let auth_req_id = form
        .take("auth_req_id")
        .ok_or_else(|| OAuthError::invalid_request("auth_req_id is required"))?;
    let tokens = state
        .ciba
        .poll(&client, &auth_req_id, dpop_key.as_deref())
        .await?;
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(tokens),
    )
        .into_response())
}
