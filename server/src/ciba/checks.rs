//! The checks `/bc-authorize` applies (CIBA §7.1), one short function per rule. `Ciba::start_request`
//! lists them in the order they are applied, so the first failing rule names the error (CIBA §13).
use super::{
    action::{self, AgentAction},
    request::RawDetails,
    CibaError, Client, DeliveryMode, Policy,
};

/// Longest binding message accepted, in characters: it must fit on a phone screen and on the agent's.
pub const MAX_BINDING_MESSAGE: usize = 100;
/// CIBA §7.1 advises keeping `client_notification_token` within 1024 characters.
const MAX_NOTIFICATION_TOKEN: usize = 1024;

/// CIBA §7.1: `scope` is required and must include `openid`; the rest must be allowed for the client.
pub(super) fn check_scope(client: &Client, scope: Option<&str>) -> Result<String, CibaError> {
    let scope = scope.ok_or_else(|| {
        CibaError::InvalidRequest("scope is required and must include openid".into())
    })?;
    let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    if !scopes.contains(&"openid") {
        return Err(CibaError::InvalidScope("scope must include openid".into()));
    }
    if let Some(bad) = scopes.iter().find(|s| !client.may_request_scope(s)) {
        return Err(CibaError::InvalidScope(format!(
            "scope {bad:?} is not allowed for this client"
        )));
    }
    // Each scope once, in the order first given.
    let mut unique: Vec<&str> = Vec::with_capacity(scopes.len());
    for scope in scopes {
        if !unique.contains(&scope) {
            unique.push(scope);
        }
    }
    Ok(unique.join(" "))
}

/// Shown on both devices so the person can match them: short, printable, no invisible characters that
/// could make two different messages look alike.
pub(super) fn check_binding_message(message: String) -> Result<String, CibaError> {
    let invalid = |why: &str| CibaError::InvalidBindingMessage(format!("binding_message {why}"));
    if message.trim().is_empty() {
        return Err(invalid("must not be empty"));
    }
    if message.chars().count() > MAX_BINDING_MESSAGE {
        return Err(invalid(&format!(
            "must be at most {MAX_BINDING_MESSAGE} characters"
        )));
    }
    if message.chars().any(app::text::is_invisible) {
        return Err(invalid(
            "must be printable text without control or invisible formatting characters",
        ));
    }
    Ok(message)
}

pub(super) fn check_acr_values(acr: String) -> Result<String, CibaError> {
    if acr.len() > 512 || acr.chars().any(|c| c.is_control()) {
        return Err(CibaError::InvalidRequest(
            "acr_values must be space-separated printable values".into(),
        ));
    }
    Ok(acr)
}

pub(super) fn check_notification_token(
    client: &Client,
    token: Option<String>,
) -> Result<Option<String>, CibaError> {
    match (client.delivery_mode, token) {
        (DeliveryMode::Poll, _) => Ok(None),
        (_, None) => Err(CibaError::InvalidRequest(
            "client_notification_token is required for ping and push clients (CIBA §7.1)".into(),
        )),
        (_, Some(t))
            if t.len() > MAX_NOTIFICATION_TOKEN
                || t.chars().any(|c| c.is_control() || c == ' ') =>
        {
            Err(CibaError::InvalidRequest(
                "client_notification_token must be at most 1024 printable characters".into(),
            ))
        }
        (_, Some(t)) => Ok(Some(t)),
    }
}

/// RFC 9396 `authorization_details`: required, and exactly one `agent_action` an approver can be shown.
pub(crate) fn check_authorization_details(
    details: Option<RawDetails>,
) -> Result<AgentAction, CibaError> {
    match details {
        None => Err(CibaError::InvalidRequest(
            "authorization_details is required: one agent_action naming the action, target and consequence"
                .into(),
        )),
        Some(RawDetails::Text(text)) => action::parse_authorization_details(&text)
            .map_err(|e| CibaError::InvalidAuthorizationDetails(e.0)),
        Some(RawDetails::Json(value)) => {
            action::parse_value(value).map_err(|e| CibaError::InvalidAuthorizationDetails(e.0))
        }
    }
}

/// CIBA §7.1 `requested_expiry`: a positive number of seconds, shortened to the policy's longest.
pub(super) fn check_requested_expiry(
    policy: &Policy,
    requested: Option<&str>,
) -> Result<i64, CibaError> {
    let Some(raw) = requested else {
        return Ok(policy.default_expiry_secs);
    };
    let secs: i64 = raw.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
        CibaError::InvalidRequest("requested_expiry must be a positive integer (seconds)".into())
    })?;
    Ok(secs.min(policy.max_expiry_secs))
}

/// RFC 9449 §10: `dpop_jkt` is the base64url SHA-256 JWK thumbprint (RFC 7638) of the client's DPoP
/// key. A push client that must use DPoP has to give one: its tokens are delivered, not requested
/// with a proof, so this is the only way to bind them.
pub(super) fn check_dpop_jkt(
    client: &Client,
    jkt: Option<String>,
) -> Result<Option<String>, CibaError> {
    match jkt {
        Some(jkt) if !is_sha256_thumbprint(&jkt) => Err(CibaError::InvalidRequest(
            "dpop_jkt must be the base64url SHA-256 JWK thumbprint of the DPoP key (RFC 9449 §10)"
                .into(),
        )),
        None if client.dpop_bound && client.delivery_mode == DeliveryMode::Push => {
            Err(CibaError::InvalidRequest(
                "this push client must bind its tokens to a DPoP key: dpop_jkt is required".into(),
            ))
        }
        jkt => Ok(jkt),
    }
}

/// 32 bytes in unpadded base64url: 43 characters, the last of which carries only 4 bits.
fn is_sha256_thumbprint(jkt: &str) -> bool {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    jkt.len() == 43 && URL_SAFE_NO_PAD.decode(jkt).is_ok_and(|b| b.len() == 32)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;

    /// JSON near what `authorization_details` expects: objects with the expected keys and others,
    /// holding values of every type.
    fn near_details() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,80}".prop_map(Value::String),
            "[\\x00-\\x1f\\u{202a}-\\u{202e}\\u{200b}a-z ]{0,20}".prop_map(Value::String),
        ];
        let value = leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        let key = prop_oneof![
            Just("type".to_owned()),
            Just("action".to_owned()),
            Just("target".to_owned()),
            Just("consequence".to_owned()),
            Just("amount".to_owned()),
            Just("currency".to_owned()),
            Just("reversible".to_owned()),
            "[a-z_]{1,12}",
        ];
        let entry = (key, prop_oneof![Just(Value::from("agent_action")), value]);
        proptest::collection::vec(
            proptest::collection::vec(entry, 0..9)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            0..3,
        )
        .prop_map(Value::Array)
    }

    proptest! {
        /// Any text, and any JSON near the expected shape, is an action or a CIBA error: never a
        /// panic, and never a server error.
        #[test]
        fn any_authorization_details_are_an_action_or_a_spec_error(text in "\\PC{0,400}", json in near_details()) {
            for raw in [RawDetails::Text(text), RawDetails::Text(json.to_string()), RawDetails::Json(json)] {
                match check_authorization_details(Some(raw)) {
                    Ok(action) => prop_assert!(!action.action.trim().is_empty()),
                    Err(e) => prop_assert!(matches!(
                        e,
                        CibaError::InvalidRequest(_) | CibaError::InvalidAuthorizationDetails(_)
                    ), "{e:?}"),
                }
            }
        }
    }

    #[test]
    fn binding_messages_must_be_short_printable_and_visible() {
        // CIBA §7.1 binding_message; §13 invalid_binding_message.
        assert_eq!(check_binding_message("W4SCT".into()).unwrap(), "W4SCT");
        for bad in [
            "",
            "   ",
            "line\nbreak",
            "bell\u{7}",
            "rtl\u{202E}override",
            "zero\u{200B}width",
        ] {
            assert!(
                matches!(
                    check_binding_message(bad.into()),
                    Err(CibaError::InvalidBindingMessage(_))
                ),
                "{bad:?}"
            );
        }
        assert!(check_binding_message("x".repeat(MAX_BINDING_MESSAGE)).is_ok());
        assert!(check_binding_message("x".repeat(MAX_BINDING_MESSAGE + 1)).is_err());
    }

    #[test]
    fn requested_expiry_is_positive_and_capped() {
        // CIBA §7.1 requested_expiry.
        let policy = Policy::default();
        assert_eq!(check_requested_expiry(&policy, None).unwrap(), 300);
        assert_eq!(check_requested_expiry(&policy, Some("60")).unwrap(), 60);
        assert_eq!(
            check_requested_expiry(&policy, Some("99999")).unwrap(),
            1800
        );
        for bad in ["0", "-5", "soon", "1.5"] {
            assert!(check_requested_expiry(&policy, Some(bad)).is_err(), "{bad}");
        }
    }
}
