//! Registered agents (OAuth clients): the model here; `jwt` checks what they sign, `registration`
//! creates them and rotates their secrets, `directory` keeps them in memory so every request
//! authenticates its client without a database round trip.
use std::{fmt, str::FromStr};

use josekit::jwk::JwkSet;
use url::Url;

use crate::store::clients::ClientRow;

mod directory;
pub mod endpoint;
pub mod jwt;
mod registration;
pub mod secrets;

pub use directory::ClientDirectory;
pub use jwt::{verifier_for, JwtRejection};
pub use registration::{
    change_settings, register, rotate_secret, ClientCredentials, ClientError, NewClient, Settings,
};
pub use secrets::{ClientSecrets, StoredSecret};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    Poll,
    Ping,
    Push,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
}

macro_rules! text_enum {
    ($ty:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    other => Err(format!("unknown value {other:?}; expected one of: {}", [$($text),+].join(", "))),
                }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(DeliveryMode { Poll = "poll", Ping = "ping", Push = "push" });
text_enum!(AuthMethod {
    ClientSecretBasic = "client_secret_basic",
    ClientSecretPost = "client_secret_post",
    PrivateKeyJwt = "private_key_jwt",
});

/// Scopes a client may be allowed; `openid` is always granted.
pub const SUPPORTED_SCOPES: &[&str] = &["openid", "profile", "email"];

/// The signature algorithms accepted on client-signed JWTs (assertions, signed requests, hint tokens).
pub const CLIENT_JWT_ALGS: &[&str] = &["ES256", "ES384", "PS256", "RS256", "EdDSA"];

#[derive(Debug)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub delivery_mode: DeliveryMode,
    pub notify_url: Option<Url>,
    pub scopes: Vec<String>,
    pub auth_method: AuthMethod,
    secret: Option<StoredSecret>,
    jwks: Option<JwkSet>,
    pub disabled: bool,
    /// When it was last disabled: its requests made until then are withdrawn.
    pub last_disabled_at: Option<crate::clock::Millis>,
    /// May introspect tokens.
    pub resource_server: bool,
    /// Its tokens must be DPoP-bound (RFC 9449 §5.2): every token request carries a proof, and a
    /// push client binds each request to its key with `dpop_jkt`.
    pub dpop_bound: bool,
}

impl Client {
    pub(crate) fn from_row(row: ClientRow) -> Result<Client, String> {
        Ok(Client {
            delivery_mode: row.delivery_mode.parse()?,
            auth_method: row.auth_method.parse()?,
            notify_url: row
                .notify_url
                .as_deref()
                .map(Url::parse)
                .transpose()
                .map_err(|e| e.to_string())?,
            scopes: row.scopes.split_whitespace().map(str::to_owned).collect(),
            secret: row.secret_hash.as_deref().map(StoredSecret::parse),
            jwks: row
                .jwks
                .as_deref()
                .map(JwkSet::from_bytes)
                .transpose()
                .map_err(|e| e.to_string())?,
            disabled: row.disabled != 0,
            last_disabled_at: row.last_disabled_at,
            resource_server: row.resource_server != 0,
            dpop_bound: row.dpop_bound != 0,
            id: row.id,
            name: row.name,
        })
    }

    /// Constant-time check of a presented client secret. A secret an earlier version stored unkeyed
    /// matches nothing until `countersign keys seal-legacy` converts it (see `secrets`).
    pub fn secret_matches(&self, secrets: &ClientSecrets, secret: &str) -> bool {
        match &self.secret {
            Some(StoredSecret::Keyed(digest)) => secrets.matches(digest, secret),
            Some(StoredSecret::Unkeyed) => {
                tracing::warn!(client_id = %self.id, "this client's secret is stored unkeyed, as versions before keyed digests did, and is refused: run `countersign keys seal-legacy` once to convert it");
                false
            }
            Some(StoredSecret::Malformed) | None => false,
        }
    }

    pub fn may_request_scope(&self, scope: &str) -> bool {
        scope == "openid" || self.scopes.iter().any(|s| s == scope)
    }
}

/// A private_key_jwt client with one fixed P-256 key (RFC 7515 appendix A.3's), for the fuzz targets.
pub fn fuzz_client() -> Client {
    let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
    Client::from_row(ClientRow {
        id: "fuzz".into(),
        name: "fuzz".into(),
        delivery_mode: "poll".into(),
        notify_url: None,
        scopes: "openid".into(),
        auth_method: "private_key_jwt".into(),
        secret_hash: None,
        jwks: Some(jwks.into()),
        disabled: 0,
        last_disabled_at: None,
        created_at: 0,
        updated_at: 0,
        resource_server: 0,
        dpop_bound: 0,
    })
    .expect("a well-formed client")
}
