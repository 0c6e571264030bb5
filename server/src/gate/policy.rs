//! The gate's policy: for each tool of the upstream MCP server, whether a call passes (`allow`), waits
//! for a person's approval through Countersign (`approve`), or is refused (`deny`); for gated tools,
//! the templates that turn a call's arguments into the statement the approver reads, and who approves.
//! The statement comes from the operator's templates, never from the agent alone.
//!
//! Tools the policy does not name follow the upstream's annotations: `readOnlyHint` allows, anything
//! else (destructive, or not said to be read-only) needs approval. Annotations are the upstream's
//! hints, so the policy's own word always wins. A policy that names a tool the upstream lacks, or a
//! template that names an argument the tool does not take, is refused at start.
use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{
    ciba::action::{AgentAction, AGENT_ACTION},
    secrets::{hex, sha256},
};

/// What happens to a call.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Approve,
    Deny,
}

/// Enforce the policy, or only log what would have needed approval (and forward everything).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    #[default]
    Enforce,
    ObserveOnly,
}

/// The policy file (TOML).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub mode: Mode,
    /// How long a gated call waits for a decision before answering "pending" (MCP clients give up
    /// after 60 s by default).
    #[serde(default = "default_hold_seconds")]
    pub hold_seconds: u64,
    /// How long the approver has to decide (CIBA `requested_expiry`; Countersign caps it). Its
    /// default when absent.
    pub request_expiry_seconds: Option<u64>,
    /// Who approves a gated call when its rule names no one.
    pub approver: Option<String>,
    /// The decision for tools the policy does not name.
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub tools: BTreeMap<String, ToolRule>,
}

fn default_hold_seconds() -> u64 {
    45
}

/// Decisions for tools the policy does not name, by their annotations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default = "allow")]
    pub read_only: Decision,
    #[serde(default = "approve")]
    pub other: Decision,
}

impl Default for Defaults {
    fn default() -> Defaults {
        Defaults {
            read_only: Decision::Allow,
            other: Decision::Approve,
        }
    }
}

fn allow() -> Decision {
    Decision::Allow
}

fn approve() -> Decision {
    Decision::Approve
}

/// One tool's rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolRule {
    pub decision: Decision,
    pub approver: Option<String>,
    /// Templates of the statement; `{name}` is replaced by the argument `name`.
    pub action: Option<String>,
    pub target: Option<String>,
    pub consequence: Option<String>,
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub reversible: Option<bool>,
}

/// What the gate knows of an upstream tool, from `tools/list`.
#[derive(Clone, Debug, Default)]
pub struct UpstreamTool {
    pub name: String,
    pub read_only_hint: Option<bool>,
    pub destructive_hint: Option<bool>,
    /// The names of `inputSchema.properties`.
    pub arguments: BTreeSet<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("the policy is not valid TOML for the gate: {0}")]
    Syntax(String),
    #[error("the policy names tool {0:?}, which the upstream server does not offer")]
    UnknownTool(String),
    #[error(
        "the template for {tool}.{field} names argument {argument:?}, which {tool} does not take"
    )]
    UnknownArgument {
        tool: String,
        field: &'static str,
        argument: String,
    },
    #[error(
        "tool {0:?} needs approval, so its rule must give action, target and consequence templates"
    )]
    MissingTemplate(String),
    #[error("tool {0:?} needs approval, and neither its rule nor the policy names an approver")]
    NoApprover(String),
    #[error("template {0:?} has an unclosed {{")]
    Unclosed(String),
    #[error(
        "hold_seconds is {0}: it must be 1 to 59, below the 60 s after which MCP clients give up on a call"
    )]
    Hold(u64),
}

impl Policy {
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        toml::from_str(text).map_err(|e| PolicyError::Syntax(e.to_string()))
    }

    /// Checks the policy against the upstream's tools, at start: every named tool exists, every
    /// template names only that tool's arguments, and every tool that may need approval has a
    /// statement and an approver.
    pub fn check(&self, upstream: &[UpstreamTool]) -> Result<(), PolicyError> {
        if !(1..60).contains(&self.hold_seconds) {
            return Err(PolicyError::Hold(self.hold_seconds));
        }
        for (name, rule) in &self.tools {
            let tool = upstream
                .iter()
                .find(|t| &t.name == name)
                .ok_or_else(|| PolicyError::UnknownTool(name.clone()))?;
            for (field, template) in rule.templates() {
                for argument in placeholders(template)? {
                    if !tool.arguments.contains(&argument) {
                        return Err(PolicyError::UnknownArgument {
                            tool: name.clone(),
                            field,
                            argument,
                        });
                    }
                }
            }
        }
        for tool in upstream {
            if self.decide(tool) != Decision::Approve {
                continue;
            }
            let rule = self.tools.get(&tool.name);
            if rule
                .is_none_or(|r| r.action.is_none() || r.target.is_none() || r.consequence.is_none())
            {
                return Err(PolicyError::MissingTemplate(tool.name.clone()));
            }
            if rule
                .and_then(|r| r.approver.as_ref())
                .or(self.approver.as_ref())
                .is_none()
            {
                return Err(PolicyError::NoApprover(tool.name.clone()));
            }
        }
        Ok(())
    }

    /// The decision for a call of `tool`: its rule's, or by its annotations.
    pub fn decide(&self, tool: &UpstreamTool) -> Decision {
        match self.tools.get(&tool.name) {
            Some(rule) => rule.decision,
            None if tool.read_only_hint == Some(true) && tool.destructive_hint != Some(true) => {
                self.defaults.read_only
            }
            None => self.defaults.other,
        }
    }

    /// Who approves a call of `tool`.
    pub fn approver_of(&self, tool: &str) -> Option<&str> {
        self.tools
            .get(tool)
            .and_then(|r| r.approver.as_deref())
            .or(self.approver.as_deref())
    }

    /// The statement for a call of `tool` with `arguments`, as the `agent_action` the approver reads,
    /// from the rule's templates (checked at start, so every placeholder names an argument the tool
    /// takes; one the call leaves out reads "(none)").
    pub fn statement(&self, tool: &str, arguments: &Map<String, Value>) -> Option<AgentAction> {
        let rule = self.tools.get(tool)?;
        let fill = |template: &Option<String>| template.as_deref().map(|t| render(t, arguments));
        Some(AgentAction {
            kind: AGENT_ACTION.to_owned(),
            action: fill(&rule.action)?,
            target: fill(&rule.target)?,
            consequence: fill(&rule.consequence)?,
            amount: fill(&rule.amount),
            currency: fill(&rule.currency),
            reversible: rule.reversible,
            resource: None,
            tool: Some(tool.to_owned()),
            arguments: Some(arguments.clone()),
        })
    }
}

impl ToolRule {
    fn templates(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("action", &self.action),
            ("target", &self.target),
            ("consequence", &self.consequence),
            ("amount", &self.amount),
            ("currency", &self.currency),
        ]
        .into_iter()
        .filter_map(|(field, t)| t.as_deref().map(|t| (field, t)))
    }
}

/// The argument names a template's `{name}` placeholders use.
fn placeholders(template: &str) -> Result<Vec<String>, PolicyError> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| PolicyError::Unclosed(template.to_owned()))?;
        names.push(after[..close].trim().to_owned());
        rest = &after[close + 1..];
    }
    Ok(names)
}

/// `template` with each `{name}` replaced by the argument: a string as it is, anything else as JSON.
fn render(template: &str, arguments: &Map<String, Value>) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        match arguments.get(after[..close].trim()) {
            Some(Value::String(s)) => out.push_str(s),
            Some(other) => out.push_str(&other.to_string()),
            None => out.push_str("(none)"),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The digest of one exact call: SHA-256 of the RFC 8785 canonical JSON of the tool's name and its
/// arguments. The approval binds it; the gate compares it again right before forwarding.
pub fn call_digest(tool: &str, arguments: &Map<String, Value>) -> String {
    let call = serde_json::json!({ "tool": tool, "arguments": arguments });
    let canonical = serde_jcs::to_string(&call).unwrap_or_default();
    hex(&sha256(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const POLICY: &str = r#"
        approver = "jane@example.com"

        [tools.write_file]
        decision = "approve"
        action = "Write the file {path}"
        target = "{path}"
        consequence = "Its contents become the {content} the agent sent."
        reversible = false

        [tools.move_file]
        decision = "approve"
        approver = "ops@example.com"
        action = "Move {source}"
        target = "{destination}"
        consequence = "{source} no longer exists."

        [tools.delete_everything]
        decision = "deny"
    "#;

    fn tool(name: &str, read_only: Option<bool>, args: &[&str]) -> UpstreamTool {
        UpstreamTool {
            name: name.into(),
            read_only_hint: read_only,
            destructive_hint: None,
            arguments: args.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    fn upstream() -> Vec<UpstreamTool> {
        vec![
            tool("read_text_file", Some(true), &["path"]),
            tool("write_file", Some(false), &["path", "content"]),
            tool("move_file", None, &["source", "destination"]),
            tool("delete_everything", None, &[]),
        ]
    }

    #[test]
    fn rules_win_and_annotations_decide_the_rest() {
        let policy = Policy::parse(POLICY).unwrap();
        policy.check(&upstream()).unwrap();
        let [read, write, moved, delete] = upstream().try_into().unwrap();
        assert_eq!(policy.decide(&read), Decision::Allow);
        assert_eq!(policy.decide(&write), Decision::Approve);
        assert_eq!(policy.decide(&moved), Decision::Approve);
        assert_eq!(policy.decide(&delete), Decision::Deny);
        // Read-only but also destructive is not read-only; unannotated needs approval.
        let odd = UpstreamTool {
            destructive_hint: Some(true),
            ..tool("purge_cache", Some(true), &[])
        };
        assert_eq!(policy.decide(&odd), Decision::Approve);
        assert_eq!(
            policy.decide(&tool("unknown", None, &[])),
            Decision::Approve
        );
        assert_eq!(policy.approver_of("write_file"), Some("jane@example.com"));
        assert_eq!(policy.approver_of("move_file"), Some("ops@example.com"));
        assert_eq!(policy.mode, Mode::Enforce);
        assert_eq!(policy.hold_seconds, 45);
    }

    #[test]
    fn the_statement_comes_from_the_templates() {
        let policy = Policy::parse(POLICY).unwrap();
        let arguments = json!({"path": "/srv/notes.txt", "content": 42})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(
            policy.statement("write_file", &arguments).unwrap(),
            AgentAction {
                kind: AGENT_ACTION.into(),
                action: "Write the file /srv/notes.txt".into(),
                target: "/srv/notes.txt".into(),
                consequence: "Its contents become the 42 the agent sent.".into(),
                amount: None,
                currency: None,
                reversible: Some(false),
                resource: None,
                tool: Some("write_file".into()),
                arguments: Some(arguments.clone()),
            }
        );
        let missing = Map::new();
        assert_eq!(
            policy.statement("move_file", &missing).unwrap().target,
            "(none)"
        );
        assert_eq!(policy.statement("read_text_file", &arguments), None);
    }

    #[test]
    fn a_policy_that_does_not_fit_the_upstream_is_refused_at_start() {
        let refused = |text: &str| {
            Policy::parse(text)
                .and_then(|p| p.check(&upstream()))
                .unwrap_err()
        };
        assert_eq!(
            refused("approver = \"a@example.com\"\n[tools.rm_rf]\ndecision = \"deny\"\n[tools.write_file]\ndecision = \"approve\"\naction = \"a\"\ntarget = \"t\"\nconsequence = \"c\"\n[tools.move_file]\ndecision = \"allow\""),
            PolicyError::UnknownTool("rm_rf".into())
        );
        assert_eq!(
            refused("approver = \"a@example.com\"\n[tools.write_file]\ndecision = \"approve\"\naction = \"Write {file}\"\ntarget = \"t\"\nconsequence = \"c\"\n[tools.move_file]\ndecision = \"allow\""),
            PolicyError::UnknownArgument {
                tool: "write_file".into(),
                field: "action",
                argument: "file".into()
            }
        );
        // write_file needs approval by its annotations, and has no statement.
        assert_eq!(
            refused("approver = \"a@example.com\""),
            PolicyError::MissingTemplate("write_file".into())
        );
        assert!(matches!(
            refused("mode = \"loose\""),
            PolicyError::Syntax(_)
        ));
        assert!(matches!(
            refused("[tools.x]\ndecision = \"maybe\""),
            PolicyError::Syntax(_)
        ));
        assert!(matches!(refused("typo = 1"), PolicyError::Syntax(_)));
        assert_eq!(refused("hold_seconds = 60"), PolicyError::Hold(60));
        assert_eq!(refused("hold_seconds = 0"), PolicyError::Hold(0));
        assert_eq!(
            refused("[tools.write_file]\ndecision = \"approve\"\naction = \"a\"\ntarget = \"t\"\nconsequence = \"c\"\n[tools.move_file]\ndecision = \"deny\""),
            PolicyError::NoApprover("write_file".into())
        );
        assert_eq!(
            refused("approver = \"a@example.com\"\n[tools.write_file]\ndecision = \"approve\"\naction = \"Write {path\"\ntarget = \"t\"\nconsequence = \"c\""),
            PolicyError::Unclosed("Write {path".into())
        );
        let observe = Policy::parse(
            "mode = \"observe-only\"\nhold_seconds = 30\nrequest_expiry_seconds = 600",
        )
        .unwrap();
        assert_eq!(
            (
                observe.mode,
                observe.hold_seconds,
                observe.request_expiry_seconds
            ),
            (Mode::ObserveOnly, 30, Some(600))
        );
    }

    /// The README's walkthrough policy fits the reference filesystem server's tools (as it lists them,
    /// with their annotations): reads pass, the four writes wait or pass as the file says.
    #[test]
    fn the_walkthrough_policy_fits_the_filesystem_server() {
        let policy = Policy::parse(include_str!("../../../examples/filesystem-gate.toml")).unwrap();
        let read = |name: &str, args: &[&str]| tool(name, Some(true), args);
        let write = |name: &str, args: &[&str]| UpstreamTool {
            destructive_hint: Some(name != "create_directory"),
            ..tool(name, Some(false), args)
        };
        let filesystem = vec![
            read("read_text_file", &["path", "head", "tail"]),
            read("read_multiple_files", &["paths"]),
            read("list_directory", &["path"]),
            write("write_file", &["path", "content"]),
            write("edit_file", &["path", "edits", "dryRun"]),
            write("create_directory", &["path"]),
            write("move_file", &["source", "destination"]),
        ];
        policy.check(&filesystem).unwrap();
        let decisions: Vec<Decision> = filesystem.iter().map(|t| policy.decide(t)).collect();
        use Decision::{Allow, Approve};
        assert_eq!(
            decisions,
            [Allow, Allow, Allow, Approve, Approve, Allow, Approve]
        );
    }

    #[test]
    fn one_exact_call_has_one_digest() {
        let a = json!({"path": "/a", "content": {"x": 1, "y": [1, 2]}});
        let b = json!({"content": {"y": [1, 2], "x": 1}, "path": "/a"});
        let changed = json!({"path": "/a", "content": {"x": 2, "y": [1, 2]}});
        let digest = |v: &Value| call_digest("write_file", v.as_object().unwrap());
        assert_eq!(
            digest(&a),
            digest(&b),
            "key order does not matter (RFC 8785)"
        );
        assert_ne!(digest(&a), digest(&changed));
        assert_ne!(digest(&a), call_digest("move_file", a.as_object().unwrap()));
    }
}
