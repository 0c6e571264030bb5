//! `/.well-known/openid-configuration` (OpenID Connect Discovery; CIBA §4 adds the backchannel entries).
use axum::{extract::State, http::header, response::IntoResponse, Json};
use serde_json::json;

use super::AppState;
use crate::ciba::{
    action::AGENT_ACTION,
    clients::{CLIENT_JWT_ALGS, SUPPORTED_SCOPES},
};

pub const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";

/// OpenID Connect Discovery 1.0 §3, with CIBA §4's entries.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "CIBA",
    responses((status = 200, description = "The provider's metadata", body = Object)))]
pub async fn openid_configuration(State(state): State<AppState>) -> impl IntoResponse {
    let e = &state.endpoints;
    let body = json!({
        "issuer": e.issuer,
        "jwks_uri": e.jwks,
        "token_endpoint": e.token,
        "backchannel_authentication_endpoint": e.backchannel,
        "introspection_endpoint": e.introspection,
        "revocation_endpoint": e.revocation,
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "backchannel_token_delivery_modes_supported": ["poll", "ping", "push"],
        "backchannel_authentication_request_signing_alg_values_supported": CLIENT_JWT_ALGS,
        "backchannel_user_code_parameter_supported": true,
        "grant_types_supported": [CIBA_GRANT],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": CLIENT_JWT_ALGS,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "authorization_details_types_supported": [AGENT_ACTION],
        "dpop_signing_alg_values_supported": CLIENT_JWT_ALGS,
        "scopes_supported": SUPPORTED_SCOPES,
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "amr", "email", "name",
            "urn:openid:params:jwt:claim:auth_req_id", "at_hash"],
        "subject_types_supported": ["public"],
        "acr_values_supported": ["phr"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
    });
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(body))
}

/// The keys that verify this server's tokens (RFC 7517).
#[utoipa::path(get, path = "/jwks.json", tag = "CIBA",
    responses((status = 200, description = "A JWK set", body = Object, content_type = "application/jwk-set+json")))]
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, "public, max-age=60"),
        ],
        state.ciba.keys().jwks().to_vec(),
    )
}
