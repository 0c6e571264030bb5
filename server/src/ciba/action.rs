//! The `agent_action` authorization details type (RFC 9396): the one action an approval covers. A
//! request must name the action, its target and its consequence; anything the approver cannot be shown
//! plainly is refused, so an approval never covers more than what was on the screen.
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const AGENT_ACTION: &str = "agent_action";

const MAX_ACTION: usize = 200;
const MAX_TARGET: usize = 2000;
const MAX_CONSEQUENCE: usize = 1000;
const MAX_RESOURCE: usize = 2000;
const MAX_TOOL: usize = 128;
/// The arguments of a tool call, as compact JSON: an approver must be able to read all of them.
const MAX_ARGUMENTS_BYTES: usize = 8 * 1024;

/// One approved action. Field order here is the canonical serialisation stored and put in tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentAction {
    #[serde(rename = "type")]
    pub kind: String,
    pub action: String,
    pub target: String,
    pub consequence: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversible: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The exact tool call this action is (the MCP gate sends it): the tool's name and, with
    /// `arguments`, its arguments. Shown under the statement and bound by the approval, so the token
    /// covers that call and no other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Map<String, Value>>,
}

/// Why `authorization_details` was refused; the text goes to the agent as `error_description`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidAction(pub String);

fn invalid(msg: impl Into<String>) -> InvalidAction {
    InvalidAction(msg.into())
}

/// Parses the `authorization_details` parameter: a JSON array holding exactly one `agent_action`.
pub fn parse_authorization_details(raw: &str) -> Result<AgentAction, InvalidAction> {
    let value: Value = serde_json::from_str(raw)
        .map_err(|e| invalid(format!("authorization_details is not valid JSON: {e}")))?;
    parse_value(value)
}

/// As `parse_authorization_details`, for a value already parsed (a signed request's claim).
pub fn parse_value(value: Value) -> Result<AgentAction, InvalidAction> {
    let Value::Array(mut items) = value else {
        return Err(invalid(
            "authorization_details must be a JSON array (RFC 9396 §2)",
        ));
    };
    if items.len() != 1 {
        return Err(invalid(
            "authorization_details must hold exactly one agent_action: an approval covers one action",
        ));
    }
    let item = items.remove(0);
    match item.get("type").and_then(Value::as_str) {
        Some(AGENT_ACTION) => {}
        Some(other) => {
            return Err(invalid(format!(
                "unsupported authorization_details type {other:?}; use \"agent_action\""
            )))
        }
        None => {
            return Err(invalid(
                "each authorization_details entry needs a \"type\" (RFC 9396 §2)",
            ))
        }
    }
    let action: AgentAction = serde_json::from_value(item).map_err(|e| {
        invalid(format!(
            "agent_action must name \"action\", \"target\" and \"consequence\" as strings ({e})"
        ))
    })?;
    action.validate()?;
    Ok(action)
}

impl AgentAction {
    fn validate(&self) -> Result<(), InvalidAction> {
        required_text("action", &self.action, MAX_ACTION)?;
        required_text("target", &self.target, MAX_TARGET)?;
        required_text("consequence", &self.consequence, MAX_CONSEQUENCE)?;
        if let Some(resource) = &self.resource {
            required_text("resource", resource, MAX_RESOURCE)?;
        }
        match (&self.tool, &self.arguments) {
            (Some(tool), arguments) => {
                required_text("tool", tool, MAX_TOOL)?;
                if tool.chars().any(char::is_whitespace) {
                    return Err(invalid(
                        "agent_action.tool must be a tool name, without spaces",
                    ));
                }
                let size = arguments
                    .as_ref()
                    .map_or(0, |a| Value::Object(a.clone()).to_string().len());
                if size > MAX_ARGUMENTS_BYTES {
                    return Err(invalid(format!(
                        "agent_action.arguments are longer than {MAX_ARGUMENTS_BYTES} bytes as JSON"
                    )));
                }
            }
            (None, Some(_)) => return Err(invalid("agent_action.arguments need a tool")),
            (None, None) => {}
        }
        match (&self.amount, &self.currency) {
            (Some(amount), Some(currency)) => {
                if !is_decimal_amount(amount) {
                    return Err(invalid(
                        "amount must be a positive decimal string such as \"120.00\"",
                    ));
                }
                if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(invalid("currency must be an ISO 4217 code such as \"USD\""));
                }
            }
            (Some(_), None) => return Err(invalid("amount needs a currency")),
            (None, Some(_)) => return Err(invalid("currency needs an amount")),
            (None, None) => {}
        }
        Ok(())
    }

    /// The canonical JSON array stored with the request and copied into the access token.
    pub fn to_authorization_details(&self) -> Value {
        Value::Array(vec![
            serde_json::to_value(self).expect("AgentAction serialises")
        ])
    }
}

fn required_text(field: &str, value: &str, max_chars: usize) -> Result<(), InvalidAction> {
    if value.trim().is_empty() {
        return Err(invalid(format!("agent_action.{field} must not be empty")));
    }
    if value.chars().count() > max_chars {
        return Err(invalid(format!(
            "agent_action.{field} is longer than {max_chars} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(format!(
            "agent_action.{field} contains control characters"
        )));
    }
    Ok(())
}

fn is_decimal_amount(amount: &str) -> bool {
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    !whole.is_empty()
        && whole.len() <= 15
        && digits(whole)
        && fraction.len() <= 4
        && digits(fraction)
        && amount.contains('.') != fraction.is_empty()
        && amount.bytes().any(|b| (b'1'..=b'9').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(item: &str) -> String {
        format!("[{item}]")
    }

    #[test]
    fn a_complete_agent_action_parses_and_keeps_its_values() {
        let action = parse_authorization_details(&details(
            r#"{"type":"agent_action","action":"Refund","target":"order #1234","consequence":"money leaves","amount":"120.00","currency":"USD","reversible":false}"#,
        ))
        .unwrap();
        assert_eq!(action.amount.as_deref(), Some("120.00"));
        assert_eq!(action.reversible, Some(false));
        let back = action.to_authorization_details();
        assert_eq!(back[0]["target"], "order #1234");
        assert_eq!(back[0]["type"], "agent_action");
    }

    #[test]
    fn action_target_and_consequence_are_all_required() {
        for missing in ["action", "target", "consequence"] {
            let mut item = serde_json::json!({"type":"agent_action","action":"a","target":"t","consequence":"c"});
            item.as_object_mut().unwrap().remove(missing);
            let err = parse_value(Value::Array(vec![item])).unwrap_err();
            assert!(err.0.contains("\"consequence\""), "{err}");
        }
        let err = parse_authorization_details(&details(
            r#"{"type":"agent_action","action":"  ","target":"t","consequence":"c"}"#,
        ))
        .unwrap_err();
        assert_eq!(err.0, "agent_action.action must not be empty");
    }

    #[test]
    fn anything_that_cannot_be_shown_plainly_is_refused() {
        let cases = [
            ("{}", "must be a JSON array"),
            ("[]", "exactly one"),
            (
                r#"[{"type":"payment"}]"#,
                "unsupported authorization_details type",
            ),
            (r#"[{"action":"a"}]"#, "needs a \"type\""),
            (
                r#"[{"type":"agent_action","action":"a","target":"t","consequence":"c","extra":1}]"#,
                "must name",
            ),
            (
                r#"[{"type":"agent_action","action":"a\u0007","target":"t","consequence":"c"}]"#,
                "control characters",
            ),
            (
                r#"[{"type":"agent_action","action":"a","target":"t","consequence":"c","amount":"1e9","currency":"USD"}]"#,
                "positive decimal",
            ),
            (
                r#"[{"type":"agent_action","action":"a","target":"t","consequence":"c","amount":"10"}]"#,
                "needs a currency",
            ),
            (
                r#"[{"type":"agent_action","action":"a","target":"t","consequence":"c","amount":"10","currency":"usd"}]"#,
                "ISO 4217",
            ),
            ("not json", "not valid JSON"),
        ];
        for (raw, expected) in cases {
            let err = parse_authorization_details(raw).unwrap_err();
            assert!(err.0.contains(expected), "{raw}: {err}");
        }
    }

    #[test]
    fn a_tool_call_is_carried_exactly_and_within_reason() {
        let action = parse_authorization_details(&details(
            r#"{"type":"agent_action","action":"Write","target":"/a","consequence":"c","tool":"write_file","arguments":{"path":"/a","content":"x"}}"#,
        ))
        .unwrap();
        assert_eq!(action.tool.as_deref(), Some("write_file"));
        let back = action.to_authorization_details();
        assert_eq!(
            back[0]["arguments"],
            serde_json::json!({"path": "/a", "content": "x"})
        );
        let cases = [
            (r#""arguments":{"a":1}"#, "need a tool"),
            (r#""tool":"write file""#, "without spaces"),
            (r#""tool":"""#, "tool must not be empty"),
            (r#""tool":"t","arguments":[1]"#, "must name"),
        ];
        for (extra, expected) in cases {
            let raw = details(&format!(
                r#"{{"type":"agent_action","action":"a","target":"t","consequence":"c",{extra}}}"#
            ));
            let err = parse_authorization_details(&raw).unwrap_err();
            assert!(err.0.contains(expected), "{extra}: {err}");
        }
        let long = "x".repeat(MAX_ARGUMENTS_BYTES);
        let raw = details(&format!(
            r#"{{"type":"agent_action","action":"a","target":"t","consequence":"c","tool":"t","arguments":{{"content":"{long}"}}}}"#
        ));
        assert!(parse_authorization_details(&raw)
            .unwrap_err()
            .0
            .contains("8192 bytes"));
    }

    #[test]
    fn amounts_are_plain_positive_decimals() {
        for ok in ["1", "120.00", "0.5", "999999.9999"] {
            assert!(is_decimal_amount(ok), "{ok}");
        }
        for bad in [
            "", "0", "0.00", "-1", "1.", ".5", "1,00", "1.23456", "+3", " 1",
        ] {
            assert!(!is_decimal_amount(bad), "{bad}");
        }
    }
}
