//! The agent-facing API described in OpenAPI 3.1, served at `/openapi.json`, for tool builders and API
//! fuzzers. Generated from the code: the operations are the handlers' own `#[utoipa::path]`
//! attributes, the answers the types the handlers serialise. The forms are parsed by hand
//! (`oauth::form`, strictly), so their parameters are listed here beside the parser's own list, and a
//! test keeps the two the same. These form types describe the wire format only; nothing builds them.
use axum::{http::header, response::IntoResponse, Json};
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi, ToSchema,
};

/// CIBA §7.1: the backchannel authentication request. Either these parameters, or one `request`
/// (a JWT signed with the client's key, §7.1.1) holding them.
#[derive(ToSchema)]
pub struct BackchannelForm {
    /// Space-separated; must include `openid`.
    #[schema(example = "openid")]
    pub scope: Option<String>,
    /// The approver's e-mail, or `group:<name>` for a group this agent was allowed to address.
    /// Exactly one of `login_hint`, `id_token_hint`, `login_hint_token`.
    #[schema(example = "jane@example.com")]
    pub login_hint: Option<String>,
    /// An ID token this server issued to this client.
    pub id_token_hint: Option<String>,
    /// A JWT signed by the client naming the approver in `sub_id` (`{"format":"email",...}`), or a
    /// group (`{"format":"group","group":"<name>"}`).
    pub login_hint_token: Option<String>,
    /// JSON: one `agent_action` with `action`, `target` and `consequence` (optional `amount`,
    /// `currency`, `reversible`). Required.
    #[schema(
        example = r#"[{"type":"agent_action","action":"Refund $120","target":"order #4411","consequence":"Money leaves the shop."}]"#
    )]
    pub authorization_details: Option<String>,
    /// At most 20 printable characters, shown to the approver.
    pub binding_message: Option<String>,
    /// Required when the approver has one.
    pub user_code: Option<String>,
    /// Seconds, up to the server's maximum.
    pub requested_expiry: Option<String>,
    pub acr_values: Option<String>,
    /// Required for ping and push clients (CIBA §7.1).
    pub client_notification_token: Option<String>,
    /// RFC 9449 §10: binds the request's tokens to this DPoP key thumbprint.
    pub dpop_jkt: Option<String>,
    /// CIBA §7.1.1: the parameters above, as claims of a JWT signed by the client.
    pub request: Option<String>,
    /// With `client_secret_post`.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// With `private_key_jwt` (RFC 7523).
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
}

/// CIBA §10.1: the token request.
#[derive(ToSchema)]
pub struct TokenForm {
    #[schema(example = "urn:openid:params:grant-type:ciba")]
    pub grant_type: String,
    pub auth_req_id: String,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
}

/// RFC 7662 §2.1 (introspection) and RFC 7009 §2.1 (revocation).
#[derive(ToSchema)]
pub struct TokenParameterForm {
    pub token: String,
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
}

/// RFC 7662 §2.2: `active`, and for an active token its claims.
#[derive(ToSchema)]
pub struct Introspection {
    pub active: bool,
    pub token_type: Option<String>,
    pub client_id: Option<String>,
    pub sub: Option<String>,
    pub scope: Option<String>,
    pub exp: Option<i64>,
}

struct ClientAuthentication;

impl Modify for ClientAuthentication {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "client_secret_basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Countersign agent API",
        description = "Human approval for AI-agent actions over OpenID Connect CIBA. Clients also \
            authenticate with client_secret_post or private_key_jwt (form parameters).",
    ),
    paths(
        super::discovery::openid_configuration,
        super::discovery::jwks,
        super::bc_authorize::bc_authorize,
        super::token::token,
        super::introspect::introspect,
        super::revoke::revoke,
    ),
    components(schemas(BackchannelForm, TokenForm, TokenParameterForm, Introspection)),
    modifiers(&ClientAuthentication),
    tags((name = "CIBA", description = "OpenID Connect Client-Initiated Backchannel Authentication 1.0"))
)]
pub struct AgentApi;

/// `GET /openapi.json`.
pub async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(AgentApi::openapi()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn properties(schema: &str) -> Vec<String> {
        let doc = serde_json::to_value(AgentApi::openapi()).unwrap();
        let mut names: Vec<String> = doc["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_described_form_is_the_parsed_one() {
        let mut parsed: Vec<String> = super::super::bc_authorize::PARAMETERS
            .iter()
            .map(|p| (*p).to_owned())
            .chain(
                [
                    "request",
                    "client_id",
                    "client_secret",
                    "client_assertion_type",
                    "client_assertion",
                ]
                .map(str::to_owned),
            )
            .collect();
        parsed.sort();
        assert_eq!(properties("BackchannelForm"), parsed);
    }

    #[test]
    fn the_description_is_openapi_3_1_with_every_endpoint() {
        let doc = serde_json::to_value(AgentApi::openapi()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        for path in [
            "/.well-known/openid-configuration",
            "/jwks.json",
            "/bc-authorize",
            "/token",
            "/introspect",
            "/revoke",
        ] {
            assert!(doc["paths"][path].is_object(), "{path}");
        }
    }
}
