//! Approval policies: which actions need more than one approval, by whom. A policy names an agent
//! (or every agent), a match on the action, the number of distinct people who must approve and,
//! usually, the group they come from. Policies are versioned and never edited: the version in force
//! when a request is made is copied into it as its [`Rule`], which the signed statement names, so
//! neither a later edit nor a database writer can lower what the approvers' passkeys agreed to.
use std::{
    str::FromStr,
    sync::{Arc, RwLock},
};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::action::AgentAction;
use crate::store::{groups::PolicyRow, Store, StoreError};

/// The most approvals a policy may ask for.
pub const MAX_APPROVALS: i64 = 10;

/// What a request must collect before tokens exist: `approvals` approvals by distinct people
/// among its addressees, under version `version` of policy `policy`. Its JSON is part of the
/// request's signed statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub policy: String,
    pub version: i64,
    pub approvals: i64,
    /// The group whose members approve, when the policy names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Who else is asked if the request is still open after a while.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
}

/// Another group asked too once a request has been open `after_secs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    pub after_secs: i64,
    pub group: String,
}

/// Which actions a policy covers; every condition given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionMatch {
    /// The action's name, exactly or as a pattern (`*` any run of characters, `?` one), ignoring
    /// case.
    pub action: Option<String>,
    /// The tool's name (a gated call), as `action` is matched.
    pub tool: Option<String>,
    /// Amounts strictly above this decimal (in whatever currency the action names).
    pub amount_above: Option<Decimal>,
    /// Only actions that say they cannot be undone (`reversible: false`).
    pub irreversible_only: bool,
}

impl ActionMatch {
    pub fn matches(&self, action: &AgentAction) -> bool {
        let pattern = |pattern: &Option<String>, value: Option<&str>| match pattern {
            None => true,
            Some(p) => value.is_some_and(|v| {
                wildmatch::WildMatch::new(&p.to_lowercase()).matches(&v.to_lowercase())
            }),
        };
        let amount = match self.amount_above {
            None => true,
            // Amounts are validated decimals when the request arrives; one that does not parse is
            // matched, so an odd amount is never a way around a policy.
            Some(limit) => action
                .amount
                .as_deref()
                .is_some_and(|a| Decimal::from_str(a).map_or(true, |a| a > limit)),
        };
        pattern(&self.action, Some(&action.action))
            && pattern(&self.tool, action.tool.as_deref())
            && amount
            && (!self.irreversible_only || action.reversible == Some(false))
    }

    /// The conditions in words, for the console.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(a) = &self.action {
            parts.push(format!("action {a}"));
        }
        if let Some(t) = &self.tool {
            parts.push(format!("tool {t}"));
        }
        if let Some(limit) = self.amount_above {
            parts.push(format!("amount above {limit}"));
        }
        if self.irreversible_only {
            parts.push("cannot be undone".into());
        }
        if parts.is_empty() {
            "every action".into()
        } else {
            parts.join(", ")
        }
    }
}

/// One version of a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalPolicy {
    pub id: String,
    pub version: i64,
    pub name: String,
    /// The agent it applies to; None: every agent.
    pub client_id: Option<String>,
    pub matcher: ActionMatch,
    pub approvals: i64,
    /// The group whose members approve; None: the people the request is addressed to.
    pub group_id: Option<String>,
    pub escalation: Option<Escalation>,
    /// False for the version that retired the policy.
    pub active: bool,
}

impl ApprovalPolicy {
    pub fn applies(&self, client_id: &str, action: &AgentAction) -> bool {
        self.active
            && self.client_id.as_deref().is_none_or(|c| c == client_id)
            && self.matcher.matches(action)
    }

    pub fn rule(&self) -> Rule {
        Rule {
            policy: self.id.clone(),
            version: self.version,
            approvals: self.approvals,
            group: self.group_id.clone(),
            escalation: self.escalation.clone(),
        }
    }
}

impl ApprovalPolicy {
    /// The policy a stored version describes; an unreadable one is refused with the reason.
    pub fn from_row(row: &PolicyRow) -> Result<ApprovalPolicy, String> {
        let amount_above = match &row.amount_above {
            Some(a) => Some(Decimal::from_str(a).map_err(|e| format!("amount limit {a:?}: {e}"))?),
            None => None,
        };
        if !(1..=MAX_APPROVALS).contains(&row.approvals) {
            return Err(format!("{} approvals", row.approvals));
        }
        Ok(ApprovalPolicy {
            id: row.id.clone(),
            version: row.version,
            name: row.name.clone(),
            client_id: row.client_id.clone(),
            matcher: ActionMatch {
                action: row.match_action.clone(),
                tool: row.match_tool.clone(),
                amount_above,
                irreversible_only: row.irreversible_only != 0,
            },
            approvals: row.approvals,
            group_id: row.group_id.clone(),
            escalation: match (row.escalate_after_secs, &row.escalation_group_id) {
                (Some(after_secs), Some(group)) if after_secs > 0 => Some(Escalation {
                    after_secs,
                    group: group.clone(),
                }),
                (None, None) => None,
                _ => return Err("an escalation needs both a time and a group".into()),
            },
            active: row.active != 0,
        })
    }
}

/// The newest version of every policy, in memory: read at start, again every second
/// (`Ciba::refresh`) and at once after a change on this instance, so `/bc-authorize` reads no
/// table for it. Another instance's change applies here within a second, as an agent's does.
#[derive(Default)]
pub struct Policies {
    newest: RwLock<Arc<Vec<ApprovalPolicy>>>,
}

impl Policies {
    pub async fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let mut fresh = Vec::new();
        for row in store.newest_policies().await? {
            match ApprovalPolicy::from_row(&row) {
                Ok(policy) => fresh.push(policy),
                // Failing closed would stop every agent; the console shows the policy as it is
                // stored, and the operator is told here.
                Err(e) => {
                    tracing::error!(policy = %row.id, version = row.version, error = %e, "ALERT: an approval policy is unreadable and is not applied");
                }
            }
        }
        *self.newest.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        Ok(())
    }

    pub fn newest(&self) -> Arc<Vec<ApprovalPolicy>> {
        self.newest
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The policy that governs `action` by `client_id`, of the newest versions `policies`: the
/// strictest that applies (most approvals; then the lowest id, so the choice never depends on
/// order).
pub fn governing<'a>(
    policies: &'a [ApprovalPolicy],
    client_id: &str,
    action: &AgentAction,
) -> Option<&'a ApprovalPolicy> {
    policies
        .iter()
        .filter(|p| p.applies(client_id, action))
        .min_by(|a, b| b.approvals.cmp(&a.approvals).then_with(|| a.id.cmp(&b.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(name: &str, amount: Option<&str>, reversible: Option<bool>) -> AgentAction {
        AgentAction {
            kind: "agent_action".into(),
            action: name.into(),
            target: "t".into(),
            consequence: "c".into(),
            amount: amount.map(str::to_owned),
            currency: amount.map(|_| "EUR".to_owned()),
            reversible,
            resource: None,
            tool: None,
            arguments: None,
        }
    }

    fn policy(id: &str, approvals: i64, matcher: ActionMatch) -> ApprovalPolicy {
        ApprovalPolicy {
            id: id.into(),
            version: 1,
            name: id.into(),
            client_id: Some("payments".into()),
            matcher,
            approvals,
            group_id: Some("grp".into()),
            escalation: None,
            active: true,
        }
    }

    #[test]
    fn amounts_compare_as_decimals_strictly_above_the_limit() {
        let over = ActionMatch {
            amount_above: Some(Decimal::from(1000)),
            ..ActionMatch::default()
        };
        assert!(!over.matches(&action("pay", Some("1000.00"), None)));
        assert!(over.matches(&action("pay", Some("1000.01"), None)));
        assert!(over.matches(&action("pay", Some("99999"), None)));
        assert!(!over.matches(&action("pay", Some("999.9999"), None)));
        assert!(!over.matches(&action("pay", None, None)), "no amount");
    }

    #[test]
    fn names_match_as_case_blind_patterns_and_every_condition_must_hold() {
        let m = ActionMatch {
            action: Some("refund*".into()),
            irreversible_only: true,
            ..ActionMatch::default()
        };
        assert!(m.matches(&action("Refund order", None, Some(false))));
        assert!(!m.matches(&action("Refund order", None, Some(true))));
        assert!(!m.matches(&action("Refund order", None, None)));
        assert!(!m.matches(&action("Pay refund", None, Some(false))));
        let tool = ActionMatch {
            tool: Some("delete_?".into()),
            ..ActionMatch::default()
        };
        assert!(!tool.matches(&action("x", None, None)), "no tool named");
    }

    #[test]
    fn the_strictest_applicable_policy_governs_whatever_the_order() {
        let any = ActionMatch::default();
        let big = ActionMatch {
            amount_above: Some(Decimal::from(1000)),
            ..ActionMatch::default()
        };
        let mut policies = vec![policy("b", 2, any.clone()), policy("a", 3, big)];
        let pay = action("pay", Some("5000"), None);
        assert_eq!(governing(&policies, "payments", &pay).unwrap().id, "a");
        policies.reverse();
        assert_eq!(governing(&policies, "payments", &pay).unwrap().id, "a");
        let small = action("pay", Some("5"), None);
        assert_eq!(governing(&policies, "payments", &small).unwrap().id, "b");
        assert!(governing(&policies, "other-agent", &small).is_none());
        policies[0].active = false;
        policies[1].active = false;
        assert!(governing(&policies, "payments", &pay).is_none(), "retired");
    }
}
