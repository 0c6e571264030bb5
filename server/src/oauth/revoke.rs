//! `POST /revoke` (RFC 7009): a client revokes an access token it was issued, for instance once the
//! action it was approved for is done. An unknown, expired or malformed token is answered 200 like a
//! revoked one (§2.2: the client cannot act on the difference); a token issued to another client is
//! refused (§2.1).
use axum::{extract::State, http::header, response::IntoResponse};

use super::{client_auth::authenticate, error::OAuthError, form::OAuthForm, AppState};
use crate::ciba::Revocation;

/// RFC 7009: revoke an access token this client was issued.
#[utoipa::path(
    post,
    path = "/revoke",
    tag = "CIBA",
    request_body(content = super::openapi::TokenParameterForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or not a token of this server (RFC 7009 §2.2)"),
        (status = 400, description = "invalid_request; unauthorized_client (issued to another client)", body = super::error::ErrorBody),
        (status = 401, description = "invalid_client", body = super::error::ErrorBody, headers(("WWW-Authenticate" = String))),
    ),
    security((), ("client_secret_basic" = []))
)]
pub async fn revoke(
    State(state): State<AppState>,
    mut form: OAuthForm,
) -> Result<impl IntoResponse, OAuthError> {
    let client = authenticate(&state, &mut form).await?;
    let token = form
        .take("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    // §2.1: the hint only speeds up the lookup; there is one kind of token here, so it is not needed.
    let _ = form.take("token_type_hint");
    match state
        .ciba
        .revoke_access_token(&client.id, &token)
        .await
        .map_err(OAuthError::internal)?
    {
        Revocation::Revoked | Revocation::NotOurs => {
            Ok(([(header::CACHE_CONTROL, "no-store")], ""))
        }
        Revocation::OtherClient => Err(OAuthError::unauthorized_client(
            "the token was issued to another client",
        )),
    }
}
