//! The agent-facing HTTP API: discovery, JWKS, the backchannel authentication endpoint, the token
//! endpoint and introspection. Handlers here translate HTTP to `ciba` calls and nothing more.
use std::sync::Arc;

use axum::{
    routing::{get, post},
    Router,
};

use crate::ciba::Ciba;

pub mod bc_authorize;
pub mod client_auth;
pub mod discovery;
pub mod dpop;
pub mod error;
pub mod form;
pub mod introspect;
pub mod openapi;
pub mod replay;
pub mod revoke;
pub mod token;

/// The public URLs of this server's endpoints, derived once from the configured public URL.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub issuer: String,
    pub jwks: String,
    pub token: String,
    pub backchannel: String,
    pub introspection: String,
    pub revocation: String,
}

impl Endpoints {
    pub fn new(public_url: &url::Url) -> Endpoints {
        let base = public_url.as_str().trim_end_matches('/');
        Endpoints {
            issuer: base.to_owned(),
            jwks: format!("{base}/jwks.json"),
            token: format!("{base}/token"),
            backchannel: format!("{base}/bc-authorize"),
            introspection: format!("{base}/introspect"),
            revocation: format!("{base}/revoke"),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub ciba: Arc<Ciba>,
    pub endpoints: Arc<Endpoints>,
    pub replay: Arc<replay::UsedJwts>,
    pub dpop: Arc<dpop::DpopVerifier>,
}

pub fn routes(state: AppState, limits: Arc<crate::limits::AddressLimits>) -> Router {
    let failures_counted =
        axum::middleware::from_fn_with_state(limits, crate::limits::limit_failures);
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/jwks.json", get(discovery::jwks))
        .route("/openapi.json", get(openapi::openapi_json))
        .route(
            "/bc-authorize",
            post(bc_authorize::bc_authorize).layer(failures_counted),
        )
        .route("/token", post(token::token))
        .route("/introspect", post(introspect::introspect))
        .route("/revoke", post(revoke::revoke))
        .with_state(state)
}
