//! Registering a client (`countersign client create`) and rotating its secret.
use josekit::jwk::JwkSet;

use super::{
    endpoint::{self, EndpointPolicy},
    AuthMethod, ClientSecrets, DeliveryMode, SUPPORTED_SCOPES,
};
use crate::{
    clock::Millis,
    secrets::{random_id, random_token},
    store::{clients::ClientRow, Store, StoreError},
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Invalid(String),
    #[error("no client {0:?}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
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
    /// A tool agents call, which may introspect their tokens.
    pub resource_server: bool,
    /// Requires DPoP-bound tokens (RFC 9449 §5.2 `dpop_bound_access_tokens`).
    pub dpop_bound: bool,
}

#[derive(Debug, serde::Serialize)]
pub struct ClientCredentials {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// Registers a client. Secret-authenticated clients get a 256-bit secret, returned once and stored
/// only as a keyed digest (`secrets`).
pub async fn register(
    store: &Store,
    secrets: &ClientSecrets,
    new: NewClient,
    policy: EndpointPolicy,
    now: Millis,
) -> Result<ClientCredentials, ClientError> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ClientError::Invalid(
            "the name must be 1 to 100 printable characters".into(),
        ));
    }
    let notify_url = checked_delivery(new.delivery_mode, new.notify_url.as_deref(), policy).await?;
    let scopes = checked_scopes(&new.scopes)?;
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
    let id = random_id();
    store
        .insert_client(&ClientRow {
            id: id.clone(),
            name: name.to_owned(),
            delivery_mode: new.delivery_mode.to_string(),
            notify_url,
            scopes,
            auth_method: new.auth_method.to_string(),
            secret_hash: secret.as_deref().map(|s| secrets.stored(s)),
            jwks,
            disabled: 0,
            last_disabled_at: None,
            created_at: now,
            updated_at: now,
            resource_server: i64::from(new.resource_server),
            dpop_bound: i64::from(new.dpop_bound),
        })
        .await?;
    Ok(ClientCredentials {
        client_id: id,
        client_secret: secret,
    })
}

/// How a client is told of decisions, and the scopes it may ask for: what an admin may change after
/// registration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub delivery_mode: DeliveryMode,
    pub notify_url: Option<String>,
    pub scopes: Vec<String>,
}

/// Changes client `id`'s settings, checked as at registration. Requests already made keep the
/// notification token they were made with: a request made in poll mode is never pinged (see
/// `ciba::decision`), and one made in ping or push mode is told in the client's new mode.
pub async fn change_settings(
    store: &Store,
    id: &str,
    settings: &Settings,
    policy: EndpointPolicy,
    now: Millis,
) -> Result<ClientRow, ClientError> {
    let notify_url = checked_delivery(
        settings.delivery_mode,
        settings.notify_url.as_deref(),
        policy,
    )
    .await?;
    let scopes = checked_scopes(&settings.scopes)?;
    let changed = store
        .set_client_settings(
            id,
            settings.delivery_mode.as_str(),
            notify_url.as_deref(),
            &scopes,
            now,
        )
        .await?;
    if !changed {
        return Err(ClientError::NotFound(id.into()));
    }
    store
        .client(id)
        .await?
        .ok_or_else(|| ClientError::NotFound(id.into()))
}

/// The notification URL a client in `mode` keeps: none for poll, a checked one for ping and push.
async fn checked_delivery(
    mode: DeliveryMode,
    notify_url: Option<&str>,
    policy: EndpointPolicy,
) -> Result<Option<String>, ClientError> {
    match (mode, notify_url) {
        (DeliveryMode::Poll, None) => Ok(None),
        (DeliveryMode::Poll, Some(_)) => Err(ClientError::Invalid(
            "--notify-url is only for ping and push clients".into(),
        )),
        (_, None) => Err(ClientError::Invalid(
            "ping and push clients need --notify-url".into(),
        )),
        (_, Some(raw)) => Ok(Some(validate_notify_url(raw, policy).await?)),
    }
}

/// The scopes a client may ask for, as stored: openid first, then each allowed scope once, in the
/// order given.
fn checked_scopes(asked: &[String]) -> Result<String, ClientError> {
    let mut scopes = vec!["openid"];
    for scope in asked {
        if !SUPPORTED_SCOPES.contains(&scope.as_str()) {
            return Err(ClientError::Invalid(format!(
                "unknown scope {scope:?}; supported: {}",
                SUPPORTED_SCOPES.join(" ")
            )));
        }
        if !scopes.contains(&scope.as_str()) {
            scopes.push(scope);
        }
    }
    Ok(scopes.join(" "))
}

/// Issues a new secret; the old one stops working once the servers' directories refresh (about a second).
pub async fn rotate_secret(
    store: &Store,
    secrets: &ClientSecrets,
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
        .set_client_secret_hash(client_id, &secrets.stored(&secret), now)
        .await?;
    Ok(ClientCredentials {
        client_id: client_id.to_owned(),
        client_secret: Some(secret),
    })
}

/// CIBA §4: https, with the address it resolves to public (checked again at each delivery, see
/// `notify::client`). A name that does not resolve yet is accepted: delivery checks it then.
async fn validate_notify_url(raw: &str, policy: EndpointPolicy) -> Result<String, ClientError> {
    let invalid = |why: String| ClientError::Invalid(format!("--notify-url {why}"));
    let url = policy.check_url(raw).map_err(invalid)?;
    match endpoint::resolve(&url).await {
        Ok(addrs) => {
            if let Some(bad) = addrs.iter().find(|a| !policy.allows(a.ip())) {
                return Err(invalid(format!(
                    "resolves to {}, which is not a public address",
                    bad.ip()
                )));
            }
        }
        Err(why) => {
            tracing::warn!(url = %url, why, "the notification endpoint does not resolve now");
        }
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
