//! Who a request is for (CIBA §7.1): exactly one of `login_hint` (an email), `id_token_hint` (an ID
//! token this server issued to the client) and `login_hint_token` (a JWT the client signed).
use serde_json::Value;

use super::{Ciba, CibaError, Client};
use crate::{
    clock::Millis,
    identity::approvers::{self, Approver},
};

const MAX_HINT: usize = 4096;

impl Ciba {
    /// CIBA §7.1: exactly one hint identifies the approver.
    pub(super) async fn resolve_hint(
        &self,
        client: &Client,
        login_hint: Option<String>,
        id_token_hint: Option<String>,
        login_hint_token: Option<String>,
        now: Millis,
    ) -> Result<Approver, CibaError> {
        let unknown = || CibaError::UnknownUserId("no approver matches the hint".into());
        let given = [&login_hint, &id_token_hint, &login_hint_token]
            .iter()
            .filter(|h| h.is_some())
            .count();
        if given != 1 {
            return Err(CibaError::InvalidRequest(
                "exactly one of login_hint, id_token_hint and login_hint_token is required".into(),
            ));
        }
        if [&login_hint, &id_token_hint, &login_hint_token]
            .iter()
            .any(|h| h.as_ref().is_some_and(|h| h.len() > MAX_HINT))
        {
            return Err(CibaError::InvalidRequest("the hint is too long".into()));
        }
        let approver = if let Some(email) = login_hint {
            self.approvers.by_email(&self.store, &email, now).await?
        } else if let Some(token) = id_token_hint {
            let sub = self.id_token_hint_subject(client, &token)?;
            approvers::by_id(&self.store, &sub).await?
        } else if let Some(token) = login_hint_token {
            let email = login_hint_token_email(client, &token, now)?;
            self.approvers.by_email(&self.store, &email, now).await?
        } else {
            None
        };
        approver.filter(|a| !a.disabled).ok_or_else(unknown)
    }

    /// An `id_token_hint` must be an ID token this server issued to this client; it may have expired.
    fn id_token_hint_subject(&self, client: &Client, token: &str) -> Result<String, CibaError> {
        let bad = || {
            CibaError::InvalidRequest(
                "id_token_hint is not an ID token issued by this server".into(),
            )
        };
        let claims = self
            .keys
            .verify(token, super::tokens::ID_TOKEN_TYPE)
            .map_err(|_| bad())?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(bad());
        }
        let for_client = match claims.get("aud") {
            Some(Value::String(aud)) => aud == &client.id,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(client.id.as_str())),
            _ => false,
        };
        if !for_client {
            return Err(CibaError::InvalidRequest(
                "id_token_hint was issued to another client".into(),
            ));
        }
        claims
            .get("sub")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(bad)
    }
}

/// A `login_hint_token` is a JWT signed by the client's registered key whose `sub_id` names the approver
/// by email (the subject-identifier shape of RFC 9493: `{"format": "email", "email": ...}`).
fn login_hint_token_email(client: &Client, token: &str, now: Millis) -> Result<String, CibaError> {
    use super::clients::{jwt::JwtUse, JwtRejection};
    let claims = client
        .verify_jwt(token, JwtUse::LoginHintToken, now)
        .map_err(|e| match e {
            JwtRejection::Expired => CibaError::ExpiredLoginHintToken,
            other => CibaError::InvalidRequest(format!("login_hint_token rejected: {other}")),
        })?;
    let sub_id = claims.get("sub_id");
    match (sub_id.and_then(|s| s.get("format")).and_then(Value::as_str), sub_id.and_then(|s| s.get("email"))) {
        (Some("email"), Some(Value::String(email))) => Ok(email.clone()),
        _ => Err(CibaError::InvalidRequest(
            "login_hint_token needs a sub_id claim of the form {\"format\": \"email\", \"email\": ...}".into(),
        )),
    }
}
