//! Registered agents (OAuth clients): registration, secrets, JWT assertions, and the in-memory directory
//! that lets every request authenticate its client without a database round trip.
use std::{
    collections::HashMap,
    fmt,
    str::FromStr,
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc, RwLock,
    },
};

use josekit::{
    jwk::{Jwk, JwkSet},
    jws::{EdDSA, JwsVerifier, ES256, ES384, PS256, RS256},
    jwt,
};
use serde_json::{Map, Value};
use url::Url;

use crate::{
    clock::{secs, Millis},
    secrets::{hash_secret, parse_digest, random_id, random_token, secret_matches},
    store::{clients::ClientRow, Store, StoreError},
};

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
    secret_digest: Option<[u8; 32]>,
    jwks: Option<JwkSet>,
    pub disabled: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Invalid(String),
    #[error("no client {0:?}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a client-signed JWT was not accepted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtRejection {
    #[error("the client has no registered keys (register it with --jwks)")]
    NoKeys,
    #[error("the JWT signature or format is invalid")]
    BadSignature,
    #[error("the JWT has expired")]
    Expired,
    #[error("{0}")]
    BadClaims(String),
}

impl Client {
    fn from_row(row: ClientRow) -> Result<Client, String> {
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
            secret_digest: row.secret_hash.as_deref().and_then(parse_digest),
            jwks: row
                .jwks
                .as_deref()
                .map(JwkSet::from_bytes)
                .transpose()
                .map_err(|e| e.to_string())?,
            disabled: row.disabled != 0,
            id: row.id,
            name: row.name,
        })
    }

    /// Constant-time check of a presented client secret.
    pub fn secret_matches(&self, secret: &str) -> bool {
        self.secret_digest
            .as_ref()
            .is_some_and(|digest| secret_matches(secret, digest))
    }

    pub fn may_request_scope(&self, scope: &str) -> bool {
        scope == "openid" || self.scopes.iter().any(|s| s == scope)
    }

    /// Verifies a JWT signed with one of the client's registered keys, checking `exp` (and `nbf`) at
    /// `now`. Audience and the other claims are the caller's, since each use has its own rules.
    pub fn verify_jwt(&self, token: &str, now: Millis) -> Result<Map<String, Value>, JwtRejection> {
        let jwks = self.jwks.as_ref().ok_or(JwtRejection::NoKeys)?;
        let header = jwt::decode_header(token).map_err(|_| JwtRejection::BadSignature)?;
        let alg = header
            .claim("alg")
            .and_then(Value::as_str)
            .ok_or(JwtRejection::BadSignature)?;
        if !CLIENT_JWT_ALGS.contains(&alg) {
            return Err(JwtRejection::BadClaims(format!(
                "the signing algorithm {alg:?} is not accepted"
            )));
        }
        let candidates: Vec<&Jwk> = match header.claim("kid").and_then(Value::as_str) {
            Some(kid) => jwks.get(kid),
            None => jwks.keys(),
        };
        let payload = candidates
            .into_iter()
            .filter_map(|jwk| verifier_for(alg, jwk))
            .find_map(|verifier| jwt::decode_with_verifier(token, verifier.as_ref()).ok())
            .map(|(payload, _)| payload)
            .ok_or(JwtRejection::BadSignature)?;
        let claims = payload.claims_set().clone();
        let now_s = secs(now);
        match claims.get("exp").and_then(Value::as_i64) {
            Some(exp) if exp <= now_s => return Err(JwtRejection::Expired),
            Some(_) => {}
            None => return Err(JwtRejection::BadClaims("the JWT has no exp claim".into())),
        }
        if claims
            .get("nbf")
            .and_then(Value::as_i64)
            .is_some_and(|nbf| nbf > now_s + 60)
        {
            return Err(JwtRejection::BadClaims(
                "the JWT is not valid yet (nbf)".into(),
            ));
        }
        Ok(claims)
    }
}

fn verifier_for(alg: &str, jwk: &Jwk) -> Option<Box<dyn JwsVerifier>> {
    let verifier: Box<dyn JwsVerifier> = match alg {
        "ES256" => Box::new(ES256.verifier_from_jwk(jwk).ok()?),
        "ES384" => Box::new(ES384.verifier_from_jwk(jwk).ok()?),
        "PS256" => Box::new(PS256.verifier_from_jwk(jwk).ok()?),
        "RS256" => Box::new(RS256.verifier_from_jwk(jwk).ok()?),
        "EdDSA" => Box::new(EdDSA.verifier_from_jwk(jwk).ok()?),
        _ => return None,
    };
    Some(verifier)
}

/// What `client create` needs.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub delivery_mode: DeliveryMode,
    pub notify_url: Option<String>,
    pub scopes: Vec<String>,
    pub auth_method: AuthMethod,
    pub jwks: Option<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct ClientCredentials {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// Registers a client. Secret-authenticated clients get a 256-bit secret, returned once and stored
/// only as its SHA-256 digest.
pub async fn register(
    store: &Store,
    new: NewClient,
    now: Millis,
) -> Result<ClientCredentials, ClientError> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ClientError::Invalid(
            "the name must be 1 to 100 printable characters".into(),
        ));
    }
    let notify_url = match (new.delivery_mode, new.notify_url.as_deref()) {
        (DeliveryMode::Poll, None) => None,
        (DeliveryMode::Poll, Some(_)) => {
            return Err(ClientError::Invalid(
                "--notify-url is only for ping and push clients".into(),
            ))
        }
        (_, None) => {
            return Err(ClientError::Invalid(
                "ping and push clients need --notify-url".into(),
            ))
        }
        (_, Some(raw)) => Some(validate_notify_url(raw)?),
    };
    for scope in &new.scopes {
        if !SUPPORTED_SCOPES.contains(&scope.as_str()) {
            return Err(ClientError::Invalid(format!(
                "unknown scope {scope:?}; supported: {}",
                SUPPORTED_SCOPES.join(" ")
            )));
        }
    }
    let jwks = match (new.auth_method, new.jwks) {
        (AuthMethod::PrivateKeyJwt, None) => {
            return Err(ClientError::Invalid(
                "private_key_jwt clients need --jwks".into(),
            ))
        }
        (_, Some(raw)) => Some(validate_jwks(&raw)?),
        (_, None) => None,
    };
    let secret = (new.auth_method != AuthMethod::PrivateKeyJwt).then(|| random_token(32));
    let mut scopes = vec!["openid".to_owned()];
    scopes.extend(new.scopes.into_iter().filter(|s| s != "openid"));
    scopes.dedup();
    let id = random_id();
    store
        .insert_client(&ClientRow {
            id: id.clone(),
            name: name.to_owned(),
            delivery_mode: new.delivery_mode.to_string(),
            notify_url,
            scopes: scopes.join(" "),
            auth_method: new.auth_method.to_string(),
            secret_hash: secret.as_deref().map(hash_secret),
            jwks,
            disabled: 0,
            created_at: now,
            updated_at: now,
        })
        .await?;
    Ok(ClientCredentials {
        client_id: id,
        client_secret: secret,
    })
}

/// Issues a new secret; the old one stops working once the servers' directories refresh (about a second).
pub async fn rotate_secret(
    store: &Store,
    client_id: &str,
    now: Millis,
) -> Result<ClientCredentials, ClientError> {
    let row = store
        .client(client_id)
        .await?
        .ok_or_else(|| ClientError::NotFound(client_id.into()))?;
    if row.auth_method == AuthMethod::PrivateKeyJwt.as_str() {
        return Err(ClientError::Invalid(
            "this client authenticates with private_key_jwt and has no secret".into(),
        ));
    }
    let secret = random_token(32);
    store
        .set_client_secret_hash(client_id, &hash_secret(&secret), now)
        .await?;
    Ok(ClientCredentials {
        client_id: client_id.to_owned(),
        client_secret: Some(secret),
    })
}

fn validate_notify_url(raw: &str) -> Result<String, ClientError> {
    let url = Url::parse(raw)
        .map_err(|e| ClientError::Invalid(format!("--notify-url is not a URL: {e}")))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    // CIBA §4 wants https; plain http is allowed only to this machine, for development.
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(ClientError::Invalid(
            "--notify-url must use https (http only for localhost)".into(),
        ));
    }
    if url.fragment().is_some() {
        return Err(ClientError::Invalid(
            "--notify-url must not have a fragment".into(),
        ));
    }
    Ok(url.to_string())
}

fn validate_jwks(raw: &str) -> Result<String, ClientError> {
    let set = JwkSet::from_bytes(raw)
        .map_err(|e| ClientError::Invalid(format!("--jwks is not a JWK set: {e}")))?;
    if set.keys().is_empty() {
        return Err(ClientError::Invalid("--jwks holds no keys".into()));
    }
    if set.keys().iter().any(|k| k.parameter("d").is_some()) {
        return Err(ClientError::Invalid(
            "--jwks must hold public keys only".into(),
        ));
    }
    Ok(raw.to_owned())
}

/// The in-memory view of the `clients` table. Refreshed every second from rows changed since the last
/// look (so `client disable` and `rotate-secret` take effect within about a second on every instance);
/// a miss falls through to the database, so a just-created client works at once.
pub struct ClientDirectory {
    store: Store,
    clients: RwLock<HashMap<String, Arc<Client>>>,
    refreshed_at: AtomicI64,
}

/// Rows changed this close before the last refresh are read again, to cover clock skew between writers.
const REFRESH_OVERLAP_MS: Millis = 5_000;

impl ClientDirectory {
    pub fn new(store: Store) -> ClientDirectory {
        ClientDirectory {
            store,
            clients: RwLock::new(HashMap::new()),
            refreshed_at: AtomicI64::new(0),
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        if let Some(client) = self
            .clients
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            return Ok(Some(client.clone()));
        }
        let Some(row) = self.store.client(id).await? else {
            return Ok(None);
        };
        Ok(self.insert(row))
    }

    pub async fn refresh(&self, now: Millis) -> Result<(), StoreError> {
        let since = self.refreshed_at.load(Ordering::Relaxed) - REFRESH_OVERLAP_MS;
        for row in self.store.clients_updated_since(since).await? {
            self.insert(row);
        }
        self.refreshed_at.store(now, Ordering::Relaxed);
        Ok(())
    }

    fn insert(&self, row: ClientRow) -> Option<Arc<Client>> {
        let id = row.id.clone();
        match Client::from_row(row) {
            Ok(client) => {
                let client = Arc::new(client);
                self.clients
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id, client.clone());
                Some(client)
            }
            Err(e) => {
                tracing::error!(client_id = %id, error = %e, "stored client is unreadable; treating it as unknown");
                None
            }
        }
    }
}
