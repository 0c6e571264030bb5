//! Groups and approval policies as admins keep them. Each is a change to who can approve, so each
//! goes the way of every such change (`admin::approvers`): asked for, described, confirmed with the
//! admin's passkey, and written with its admin log entry in one transaction. Here are the rules of
//! each and what it writes.
use std::str::FromStr;

use rust_decimal::Decimal;

use super::{
    approvers::{ApproverChangeError, OPERATOR},
    confirmation::Change,
};
use crate::{
    ciba::quorum::{ApprovalPolicy, MAX_APPROVALS},
    clock::Millis,
    identity::{
        approvers,
        groups::{self, Group},
    },
    secrets::random_id,
    store::{
        admin_log::{AdminEntry, ApproverUpdate},
        clients::ClientRow,
        delegations::DelegationRow,
        groups::{GroupRow, PolicyRow},
        Store, StoreError,
    },
};

/// The longest a delegation may run: a holiday, not a standing hand-over.
pub const MAX_DELEGATION_MS: i64 = 90 * 24 * 60 * 60 * 1000;

/// A group or policy change, checked and ready to write.
pub(super) struct Planned {
    pub description: String,
    pub action: &'static str,
    pub subject: String,
    pub detail: Option<String>,
    pub step: GroupStep,
}

pub(super) enum GroupStep {
    Create(GroupRow),
    AddMember {
        group: String,
        approver: String,
    },
    RemoveMember {
        group: String,
        approver: String,
    },
    Allow {
        agent: String,
        group: String,
        allowed: bool,
    },
    Policy(PolicyRow),
    Delegate(DelegationRow),
    EndDelegation(String),
}

impl GroupStep {
    pub fn update(&self, at: i64) -> ApproverUpdate<'_> {
        match self {
            GroupStep::Create(row) => ApproverUpdate::CreateGroup(row),
            GroupStep::AddMember { group, approver } => ApproverUpdate::AddMember {
                group_id: group,
                approver_id: approver,
                at,
            },
            GroupStep::RemoveMember { group, approver } => ApproverUpdate::RemoveMember {
                group_id: group,
                approver_id: approver,
            },
            GroupStep::Allow {
                agent,
                group,
                allowed,
            } => ApproverUpdate::AllowGroup {
                client_id: agent,
                group_id: group,
                allowed: *allowed,
            },
            GroupStep::Policy(row) => ApproverUpdate::PolicyVersion(row),
            GroupStep::Delegate(row) => ApproverUpdate::Delegate(row),
            GroupStep::EndDelegation(id) => ApproverUpdate::EndDelegation { id, at },
        }
    }

    /// Said when writing found nothing to change.
    pub fn nothing_changed(&self) -> &'static str {
        match self {
            GroupStep::Create(_) => "A group of that name exists already.",
            GroupStep::AddMember { .. } => "They are in that group already.",
            GroupStep::RemoveMember { .. } => "They are not in that group.",
            GroupStep::Allow { allowed: true, .. } => "That agent may address that group already.",
            GroupStep::Allow { .. } => "That agent may not address that group anyway.",
            GroupStep::Policy(_) => "The policy was changed meanwhile: look at it again.",
            GroupStep::Delegate(_) => "The delegation was not set.",
            GroupStep::EndDelegation(_) => "That delegation is over already.",
        }
    }

    pub fn changes_policies(&self) -> bool {
        matches!(self, GroupStep::Policy(_))
    }

    pub fn changes_delegations(&self) -> bool {
        matches!(self, GroupStep::Delegate(_) | GroupStep::EndDelegation(_))
    }
}

fn invalid(why: impl Into<String>) -> ApproverChangeError {
    ApproverChangeError::Invalid(why.into())
}

async fn group(store: &Store, id: &str) -> Result<Group, ApproverChangeError> {
    groups::by_id(store, id)
        .await?
        .ok_or_else(|| invalid("There is no such group."))
}

async fn agent(store: &Store, id: &str) -> Result<ClientRow, ApproverChangeError> {
    store
        .client(id)
        .await?
        .ok_or_else(|| invalid("There is no such agent."))
}

/// The rules of each group or policy change asked for by `admin_id` at `now`; None for a change of
/// another kind.
pub(super) async fn plan(
    store: &Store,
    now: Millis,
    admin_id: &str,
    change: &Change,
) -> Result<Option<Planned>, ApproverChangeError> {
    let planned = match change {
        Change::CreateGroup { name } => {
            let name = groups::check_name(name).map_err(invalid)?.to_owned();
            if groups::by_name(store, &name).await?.is_some() {
                return Err(invalid("A group of that name exists already."));
            }
            Planned {
                description: format!("Create the group {name}"),
                action: "created a group",
                subject: name.clone(),
                detail: None,
                step: GroupStep::Create(GroupRow {
                    id: random_id(),
                    name,
                    created_at: now,
                }),
            }
        }
        Change::AddToGroup {
            group: g,
            approver: a,
        }
        | Change::RemoveFromGroup {
            group: g,
            approver: a,
        } => {
            let group = group(store, g).await?;
            let approver = approvers::by_id(store, a)
                .await?
                .ok_or(ApproverChangeError::NotFound)?;
            let adding = matches!(change, Change::AddToGroup { .. });
            if adding && approver.disabled {
                return Err(invalid("A disabled approver cannot join a group."));
            }
            let (group_id, approver_id) = (group.id.clone(), approver.id.clone());
            Planned {
                description: if adding {
                    format!(
                        "Add {} ({}) to the group {}: they can decide requests made to it from now on",
                        approver.name, approver.email, group.name
                    )
                } else {
                    format!(
                        "Remove {} ({}) from the group {}: requests made to it from now on do not reach them",
                        approver.name, approver.email, group.name
                    )
                },
                action: if adding {
                    "added an approver to a group"
                } else {
                    "removed an approver from a group"
                },
                subject: group.name,
                detail: Some(approver.email),
                step: if adding {
                    GroupStep::AddMember {
                        group: group_id,
                        approver: approver_id,
                    }
                } else {
                    GroupStep::RemoveMember {
                        group: group_id,
                        approver: approver_id,
                    }
                },
            }
        }
        Change::AllowGroup { agent, group: g } | Change::DisallowGroup { agent, group: g } => {
            let group = group(store, g).await?;
            let client = self::agent(store, agent).await?;
            let allowed = matches!(change, Change::AllowGroup { .. });
            Planned {
                description: if allowed {
                    format!(
                        "Let the agent {} address the group {} (login_hint=group:{})",
                        client.name, group.name, group.name
                    )
                } else {
                    format!(
                        "Stop the agent {} addressing the group {}",
                        client.name, group.name
                    )
                },
                action: if allowed {
                    "let an agent address a group"
                } else {
                    "stopped an agent addressing a group"
                },
                subject: client.id.clone(),
                detail: Some(group.name),
                step: GroupStep::Allow {
                    agent: client.id.clone(),
                    group: group.id,
                    allowed,
                },
            }
        }
        Change::SetPolicy {
            policy,
            name,
            agent,
            action,
            tool,
            amount_above,
            irreversible,
            approvals,
            group: g,
            escalate_after_mins,
            escalation_group,
        } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
                return Err(invalid("Give the policy a name of up to 100 characters."));
            }
            if !(1..=MAX_APPROVALS).contains(approvals) {
                return Err(invalid(format!(
                    "A policy asks for 1 to {MAX_APPROVALS} approvals."
                )));
            }
            let client = match agent {
                Some(id) => Some(self::agent(store, id).await?),
                None => None,
            };
            let group = match g {
                Some(id) => Some(group(store, id).await?),
                None => None,
            };
            let limit = match amount_above {
                Some(a) => Some(Decimal::from_str(a.trim()).map_err(|_| {
                    invalid("The amount is a decimal number such as 1000 or 1000.00.")
                })?),
                None => None,
            };
            if limit.is_some_and(|l| l.is_sign_negative()) {
                return Err(invalid("The amount cannot be negative."));
            }
            let pattern = |p: &Option<String>| {
                p.as_deref()
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
            };
            let (id, version) = match policy {
                Some(id) => {
                    let newest = store
                        .newest_policies()
                        .await?
                        .into_iter()
                        .find(|p| &p.id == id)
                        .ok_or_else(|| invalid("There is no such policy."))?;
                    (newest.id, newest.version + 1)
                }
                None => (random_id(), 1),
            };
            let row = PolicyRow {
                id,
                version,
                name: name.to_owned(),
                client_id: client.as_ref().map(|c| c.id.clone()),
                match_action: pattern(action),
                match_tool: pattern(tool),
                amount_above: limit.map(|l| l.normalize().to_string()),
                irreversible_only: i64::from(*irreversible),
                approvals: *approvals,
                group_id: group.as_ref().map(|g| g.id.clone()),
                active: 1,
                created_by: admin_id.to_owned(),
                created_at: now,
                escalate_after_secs: None,
                escalation_group_id: None,
            };
            let escalation = match (escalate_after_mins, escalation_group) {
                (None, None) => None,
                (Some(mins), Some(id)) if (1..=7 * 24 * 60).contains(mins) => {
                    let to = self::group(store, id).await?;
                    if Some(&to.id) == row.group_id.as_ref() {
                        return Err(invalid(
                            "Escalate to another group than the one that approves.",
                        ));
                    }
                    Some((mins * 60, to))
                }
                (Some(_), Some(_)) => {
                    return Err(invalid("Escalate after 1 minute to 7 days."));
                }
                _ => return Err(invalid("An escalation needs both a time and a group.")),
            };
            let row = PolicyRow {
                escalate_after_secs: escalation.as_ref().map(|(secs, _)| *secs),
                escalation_group_id: escalation.as_ref().map(|(_, g)| g.id.clone()),
                ..row
            };
            let described = ApprovalPolicy::from_row(&row).map_err(invalid)?;
            Planned {
                description: format!(
                    "{} the policy \u{201c}{}\u{201d} (version {}): {} by {}, {}, need {} approval{} by distinct people{}",
                    if version == 1 { "Create" } else { "Change" },
                    row.name,
                    version,
                    described.matcher.describe(),
                    client.as_ref().map_or("any agent".to_owned(), |c| format!("the agent {}", c.name)),
                    "from now on",
                    row.approvals,
                    if row.approvals == 1 { "" } else { "s" },
                    group.as_ref().map_or(String::new(), |g| format!(" of the group {}", g.name)),
                ) + &escalation.as_ref().map_or(String::new(), |(secs, g)| {
                    format!("; after {} minutes still open, the group {} is asked too", secs / 60, g.name)
                }),
                action: "set an approval policy",
                subject: row.name.clone(),
                detail: Some(format!("version {version}")),
                step: GroupStep::Policy(row),
            }
        }
        Change::RetirePolicy { policy } => {
            let newest = store
                .newest_policies()
                .await?
                .into_iter()
                .find(|p| &p.id == policy && p.active != 0)
                .ok_or_else(|| invalid("There is no such policy in force."))?;
            let version = newest.version + 1;
            Planned {
                description: format!(
                    "Retire the policy \u{201c}{}\u{201d}: requests made from now on are not held to it",
                    newest.name
                ),
                action: "retired an approval policy",
                subject: newest.name.clone(),
                detail: Some(format!("version {version}")),
                step: GroupStep::Policy(PolicyRow {
                    version,
                    active: 0,
                    created_by: admin_id.to_owned(),
                    created_at: now,
                    ..newest
                }),
            }
        }
        Change::Delegate {
            approver,
            delegate,
            starts_at,
            ends_at,
        } => {
            plan_delegation(
                store,
                now,
                admin_id,
                approver,
                delegate,
                (*starts_at, *ends_at),
            )
            .await?
        }
        Change::EndDelegation { delegation } => {
            let row = store
                .delegation(delegation)
                .await?
                .filter(|d| d.ended_at.is_none() && d.ends_at > now)
                .ok_or_else(|| invalid("There is no such delegation running or to come."))?;
            let away = approvers::by_id(store, &row.approver_id)
                .await?
                .ok_or(ApproverChangeError::NotFound)?;
            Planned {
                description: format!(
                    "End the delegation of {}'s requests: they reach {} again from now on",
                    away.name, away.email
                ),
                action: "ended a delegation",
                subject: away.email,
                detail: None,
                step: GroupStep::EndDelegation(row.id),
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(planned))
}

/// A group or policy change made by the operator on the command line (`countersign group …`,
/// `countersign policy …`): whoever runs it has the server, so no passkey confirms it; the admin
/// log says the operator made it. What it did, or why it was refused.
pub async fn change_as_operator(
    store: &Store,
    change: &Change,
    now: Millis,
) -> Result<Result<String, String>, StoreError> {
    let planned = match plan(store, now, OPERATOR, change).await {
        Ok(Some(planned)) => planned,
        Ok(None) => return Ok(Err("not a group or policy change".into())),
        Err(ApproverChangeError::Store(e)) => return Err(e),
        Err(e) => return Ok(Err(e.to_string())),
    };
    let entry = AdminEntry {
        at: now,
        admin_id: OPERATOR,
        admin_email: "the operator (countersign command line)",
        action: planned.action,
        subject: &planned.subject,
        detail: planned.detail.as_deref(),
        authorisation: None,
    };
    let update = planned.step.update(now);
    if !store
        .admin_change(update, &entry, super::log::entry_hash)
        .await?
    {
        return Ok(Err(planned.step.nothing_changed().into()));
    }
    Ok(Ok(planned.description))
}

/// Sending `approver`'s requests to `delegate` for `(starts_at, ends_at)`: two different people,
/// the delegate enabled, a period in the future of at most 90 days, and none overlapping it.
async fn plan_delegation(
    store: &Store,
    now: Millis,
    admin_id: &str,
    approver: &str,
    delegate: &str,
    (starts_at, ends_at): (Millis, Millis),
) -> Result<Planned, ApproverChangeError> {
    let away = approvers::by_id(store, approver)
        .await?
        .ok_or(ApproverChangeError::NotFound)?;
    let standing_in = approvers::by_id(store, delegate)
        .await?
        .ok_or(ApproverChangeError::NotFound)?;
    if away.id == standing_in.id {
        return Err(invalid("Someone cannot stand in for themself."));
    }
    if standing_in.disabled {
        return Err(invalid("A disabled approver cannot stand in for anyone."));
    }
    if ends_at <= starts_at.max(now) {
        return Err(invalid(
            "The delegation must end after it starts, and in the future.",
        ));
    }
    if ends_at - starts_at > MAX_DELEGATION_MS {
        return Err(invalid("A delegation runs for at most 90 days."));
    }
    let overlapping = store
        .current_delegations(now)
        .await?
        .into_iter()
        .any(|d| d.approver_id == away.id && d.starts_at < ends_at && starts_at < d.ends_at);
    if overlapping {
        return Err(invalid(
            "They already hand their requests to someone for part of that time: end that first.",
        ));
    }
    let period = format!(
        "from {} until {}",
        utc_minute(starts_at),
        utc_minute(ends_at)
    );
    Ok(Planned {
        description: format!(
            "Send the requests of {} ({}) to {} ({}) {period}: {} decides them on their behalf",
            away.name, away.email, standing_in.name, standing_in.email, standing_in.name
        ),
        action: "set a delegation",
        subject: away.email,
        detail: Some(format!("to {} {period}", standing_in.email)),
        step: GroupStep::Delegate(DelegationRow {
            id: random_id(),
            approver_id: away.id,
            delegate_id: standing_in.id,
            starts_at,
            ends_at,
            set_by: admin_id.to_owned(),
            created_at: now,
            ended_at: None,
        }),
    })
}

/// A time as the console and the admin log say it: UTC, to the minute.
pub fn utc_minute(ms: Millis) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| ms.to_string())
}
