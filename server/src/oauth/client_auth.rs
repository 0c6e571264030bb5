//! Client authentication for the token and backchannel endpoints (RFC 6749 §2.3, RFC 7523 §3 for
//! `private_key_jwt`). A client uses exactly the method it registered; anything else is `invalid_client`.
use std::{collections::HashMap, sync::Arc};

use axum::http::header;
use base64::{engine::general_purpose::STANDARD, Engine};
use serde_json::Value;

use super::{error::OAuthError, form::OAuthForm, replay::Replay, AppState};
use crate::ciba::{clients::jwt::JwtUse, AuthMethod, Client};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Authenticates the client of a request, consuming the credential parameters from `form`.
pub async fn authenticate(
    state: &AppState,
    form: &mut OAuthForm,
) -> Result<Arc<Client>, OAuthError> {
    let basic = basic_credentials(form)?;
    let assertion_type = form.take("client_assertion_type");
    let assertion = form.take("client_assertion");
    let form_id = form.take("client_id");
    let form_secret = form.take("client_secret");
    let presented = [basic.is_some(), assertion.is_some(), form_secret.is_some()]
        .iter()
        .filter(|p| **p)
        .count();
    if presented > 1 {
        return Err(OAuthError::invalid_request(
            "use exactly one client authentication method (RFC 6749 §2.3)",
        ));
    }
    let bad = || OAuthError::invalid_client("client authentication failed");
    let now = state.ciba.now();
    if let Some((id, secret)) = basic {
        if form_id.as_deref().is_some_and(|f| f != id) {
            return Err(OAuthError::invalid_request(
                "client_id differs from the authenticated client",
            ));
        }
        let client = lookup(state, &id, AuthMethod::ClientSecretBasic).await?;
        return if client.secret_matches(state.ciba.client_secrets(), &secret) {
            Ok(client)
        } else {
            Err(bad())
        };
    }
    if let Some(secret) = form_secret {
        let id = form_id
            .ok_or_else(|| OAuthError::invalid_request("client_secret without client_id"))?;
        let client = lookup(state, &id, AuthMethod::ClientSecretPost).await?;
        return if client.secret_matches(state.ciba.client_secrets(), &secret) {
            Ok(client)
        } else {
            Err(bad())
        };
    }
    if let Some(assertion) = assertion {
        if assertion_type.as_deref() != Some(JWT_BEARER) {
            return Err(OAuthError::invalid_request(format!(
                "client_assertion_type must be {JWT_BEARER}"
            )));
        }
        let unverified = unverified_issuer(&assertion).ok_or_else(bad)?;
        if form_id.as_deref().is_some_and(|f| f != unverified) {
            return Err(OAuthError::invalid_request(
                "client_id differs from the client assertion's issuer",
            ));
        }
        let client = lookup(state, &unverified, AuthMethod::PrivateKeyJwt).await?;
        let claims = client
            .verify_jwt(&assertion, JwtUse::ClientAssertion, now)
            .map_err(|e| OAuthError::invalid_client(format!("client assertion rejected: {e}")))?;
        check_assertion_claims(state, &client, &claims, now).await?;
        return Ok(client);
    }
    Err(OAuthError::invalid_client(
        "client authentication is required",
    ))
}

async fn lookup(state: &AppState, id: &str, method: AuthMethod) -> Result<Arc<Client>, OAuthError> {
    let client = state
        .ciba
        .clients()
        .get(id)
        .await
        .map_err(OAuthError::internal)?;
    match client {
        Some(client) if !client.disabled && client.auth_method == method => Ok(client),
        _ => Err(OAuthError::invalid_client("client authentication failed")),
    }
}

/// RFC 6749 §2.3.1: the id and secret are form-urlencoded, then joined with ':' and base64-encoded.
pub(crate) fn basic_credentials(form: &OAuthForm) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = form.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::invalid_client("malformed Basic credentials");
    let value = value.to_str().map_err(|_| bad())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "only Basic authorization is accepted here",
        ));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| super::form::decode(s.as_bytes()).map_err(|_| bad());
    Ok(Some((unescape(id)?, unescape(secret)?)))
}

/// The `iss` of an assertion before verification, only to find whose keys verify it.
fn unverified_issuer(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: HashMap<String, Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

/// RFC 7523 §3: iss and sub are the client, aud names this server, and a jti is never accepted twice.
async fn check_assertion_claims(
    state: &AppState,
    client: &Client,
    claims: &serde_json::Map<String, Value>,
    now: i64,
) -> Result<(), OAuthError> {
    let reject =
        |why: &str| OAuthError::invalid_client(format!("client assertion rejected: {why}"));
    if claims.get("iss").and_then(Value::as_str) != Some(client.id.as_str())
        || claims.get("sub").and_then(Value::as_str) != Some(client.id.as_str())
    {
        return Err(reject("iss and sub must be the client_id"));
    }
    let accepted = [
        state.endpoints.issuer.as_str(),
        state.endpoints.token.as_str(),
        state.endpoints.backchannel.as_str(),
    ];
    let aud_ok = audience_includes(claims, &accepted);
    if !aud_ok {
        return Err(reject("aud must be this server's issuer or endpoint"));
    }
    match state.replay.accept_once(&client.id, claims, now).await {
        Ok(()) => {}
        Err(Replay::MissingJti) => return Err(reject("a jti of 1 to 256 characters is required")),
        Err(Replay::Repeated) => return Err(reject("this assertion was already used")),
        Err(Replay::Unavailable(e)) => return Err(OAuthError::internal(e)),
    }
    Ok(())
}

/// Whether a JWT's `aud` (a string or an array) names one of `accepted`.
pub fn audience_includes(claims: &serde_json::Map<String, Value>, accepted: &[&str]) -> bool {
    match claims.get("aud") {
        Some(Value::String(aud)) => accepted.contains(&aud.as_str()),
        Some(Value::Array(auds)) => auds
            .iter()
            .filter_map(Value::as_str)
            .any(|a| accepted.contains(&a)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    use super::*;
    use crate::oauth::error::ErrorCode;

    fn with_authorization(value: HeaderValue) -> OAuthForm {
        let mut form = OAuthForm::default();
        form.headers.insert(header::AUTHORIZATION, value);
        form
    }

    proptest! {
        /// Any Authorization header: credentials, or `invalid_client`; never a panic.
        #[test]
        fn any_authorization_header_is_credentials_or_invalid_client(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let Ok(value) = HeaderValue::from_bytes(&bytes) else {
                return Ok(());
            };
            if let Err(e) = basic_credentials(&with_authorization(value)) {
                prop_assert_eq!(e.code, ErrorCode::InvalidClient);
            }
        }

        /// Near-valid Basic credentials: what RFC 6749 §2.3.1 encodes decodes back, and a broken
        /// encoding is `invalid_client`.
        #[test]
        fn basic_credentials_decode_back(id in "\\PC{1,30}", secret in "\\PC{0,40}", cut in 0usize..8) {
            let encode = |s: &str| serde_urlencoded::to_string([("", s)]).unwrap()[1..].to_owned();
            let joined = format!("{}:{}", encode(&id), encode(&secret));
            let value = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(&joined))).unwrap();
            let decoded = basic_credentials(&with_authorization(value)).unwrap();
            prop_assert_eq!(decoded, Some((id, secret)));
            let mut broken = STANDARD.encode(&joined);
            broken.truncate(broken.len().saturating_sub(cut + 1));
            if let Ok(value) = HeaderValue::from_str(&format!("Basic {broken}!")) {
                prop_assert_eq!(basic_credentials(&with_authorization(value)).unwrap_err().code, ErrorCode::InvalidClient);
            }
        }

        /// An assertion's issuer is read before verification, to find the keys: any text is an
        /// issuer or none, never a panic.
        #[test]
        fn any_assertion_text_has_an_issuer_or_none(text in "\\PC{0,300}", claims in "\\PC{0,100}") {
            let _ = unverified_issuer(&text);
            let made = format!("e30.{}.sig", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims));
            let _ = unverified_issuer(&made);
        }
    }
}
