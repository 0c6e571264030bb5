//! Who a request is for (CIBA §7.1): exactly one of `login_hint` (an email, or `group:<name>`),
//! `id_token_hint` (an ID token this server issued to the client) and `login_hint_token` (a JWT the
//! client signed, whose subject is an email or a group). A group is found only if an admin allowed
//! this agent to address it; any other is unknown, exactly as an unknown person is.
use serde_json::Value;

use super::{Ciba, CibaError, Client};
use crate::{
    clock::Millis,
    identity::{
        approvers::{self, Approver},
        groups::{self, Group},
    },
};

/// Who a hint names.
#[derive(Clone, Debug)]
pub enum Hinted {
    Approver(Approver),
    Group(Group),
}

impl Hinted {
    pub fn approver(&self) -> Option<&Approver> {
        match self {
            Hinted::Approver(a) => Some(a),
            Hinted::Group(_) => None,
        }
    }

    pub fn group(&self) -> Option<&Group> {
        match self {
            Hinted::Group(g) => Some(g),
            Hinted::Approver(_) => None,
        }
    }
}

/// A subject the client named: an approver's email or a group's name.
enum Subject {
    Email(String),
    Group(String),
}

const MAX_HINT: usize = 4096;

impl Ciba {
    /// CIBA §7.1: exactly one hint identifies the approver, or the group, the request is for.
    pub(super) async fn resolve_hint(
        &self,
        client: &Client,
        login_hint: Option<String>,
        id_token_hint: Option<String>,
        login_hint_token: Option<String>,
        now: Millis,
    ) -> Result<Hinted, CibaError> {
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
        let subject = if let Some(hint) = login_hint {
            match hint.strip_prefix(groups::HINT_PREFIX) {
                Some(name) => Subject::Group(name.to_owned()),
                None => Subject::Email(hint),
            }
        } else if let Some(token) = id_token_hint {
            let sub = self.id_token_hint_subject(client, &token)?;
            let approver = approvers::by_id(&self.store, &sub).await?;
            return approver
                .filter(|a| !a.disabled)
                .map(Hinted::Approver)
                .ok_or_else(unknown);
        } else if let Some(token) = login_hint_token {
            login_hint_token_subject(client, &token, now)?
        } else {
            return Err(unknown());
        };
        match subject {
            Subject::Email(email) => self
                .approvers
                .by_email(&self.store, &email, now)
                .await?
                .filter(|a| !a.disabled)
                .map(Hinted::Approver)
                .ok_or_else(unknown),
            Subject::Group(name) => {
                let group = match groups::by_name(&self.store, &name).await? {
                    Some(g) if self.store.client_may_address(&client.id, &g.id).await? => g,
                    _ => {
                        return Err(CibaError::UnknownUserId(
                            "no group this agent may address has that name".into(),
                        ))
                    }
                };
                Ok(Hinted::Group(group))
            }
        }
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

/// A `login_hint_token` is a JWT signed by the client's registered key whose `sub_id` names the
/// approver by email (the subject-identifier shape of RFC 9493: `{"format": "email", "email": ...}`)
/// or a group (`{"format": "group", "group": "payments-oncall"}`, in the same shape).
fn login_hint_token_subject(
    client: &Client,
    token: &str,
    now: Millis,
) -> Result<Subject, CibaError> {
    use super::clients::{jwt::JwtUse, JwtRejection};
    let claims = client
        .verify_jwt(token, JwtUse::LoginHintToken, now)
        .map_err(|e| match e {
            JwtRejection::Expired => CibaError::ExpiredLoginHintToken,
            other => CibaError::InvalidRequest(format!("login_hint_token rejected: {other}")),
        })?;
    let sub_id = claims.get("sub_id");
    let field = |name: &str| sub_id.and_then(|s| s.get(name)).and_then(Value::as_str);
    match (field("format"), field("email"), field("group")) {
        (Some("email"), Some(email), _) => Ok(Subject::Email(email.to_owned())),
        (Some("group"), _, Some(group)) => Ok(Subject::Group(group.to_owned())),
        _ => Err(CibaError::InvalidRequest(
            "login_hint_token needs a sub_id claim of the form {\"format\": \"email\", \"email\": ...} \
             or {\"format\": \"group\", \"group\": ...}"
                .into(),
        )),
    }
}
