//! The admin console's service: the history use-case (`admin::history`) for admins only, its answers
//! as views. The admin check is here, on the server, for every call.
use std::{collections::HashMap, sync::Arc};

use app::{
    model::{
        AdminLogLine, AdminLogView, AgentLine, AgentView, AgentsView, ApproverLine, ApproversView,
        CheckView, DayView, DelegationLine, FilterOption, GroupLine, GroupsView, HistoryDetail,
        HistoryLine, HistoryPage, HistoryQuery, InviteView, OverviewView, PasskeyLine,
        PendingChangeView, PolicyLine, RecoveryLine, TimingView,
    },
    service::{AdminService, SignedIn, UiError, UserResult},
};
use async_trait::async_trait;
use axum::{
    body::Body,
    extract::{FromRequestParts, Path, Query, State},
    http::{header, request::Parts, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
    Form, Router,
};
use futures::StreamExt;
use tower_sessions::Session;
use webauthn_rs::prelude::{PublicKeyCredential, RequestChallengeResponse};

use super::{
    approvals::statement_view,
    identity::{internal, passkey_refusal, IdentityApp},
};
use crate::{
    admin::{
        agents::{Admin, AgentSummary, Agents},
        approvers::{ApproverChangeError, Approvers, Done},
        confirmation::{change_challenge, Change, Confirmation},
        history::{Channel, Delivery, Entry, Filters, History, HistoryError},
        overview,
    },
    ciba::{
        bundle::record_json,
        clients::{AuthMethod, ClientError, DeliveryMode, NewClient, Settings},
        ids::page_ref,
        Ciba,
    },
    clock::Millis,
    identity::{
        approvers::{self, Approver, Role},
        invitations,
        provenance::Authorisation,
        verifier::PasskeyVerifier,
    },
    sealing::Kek,
    secrets::base64url,
};

pub struct AdminPages {
    history: History,
    agents: Agents,
    approvers: Approvers,
    /// Asks the admin's passkey to confirm a change to who can approve.
    verifier: Arc<dyn PasskeyVerifier>,
    public_url: String,
    ciba: Arc<Ciba>,
    /// Seals what the session carries to the next page: sessions are stored in the database, and a
    /// new client secret must not sit there in plain text.
    kek: Arc<Kek>,
}

impl AdminPages {
    pub fn new(
        history: History,
        agents: Agents,
        approvers: Approvers,
        verifier: Arc<dyn PasskeyVerifier>,
        ciba: Arc<Ciba>,
        kek: Arc<Kek>,
        public_url: &url::Url,
    ) -> AdminPages {
        AdminPages {
            history,
            agents,
            approvers,
            verifier,
            public_url: public_url.as_str().trim_end_matches('/').to_owned(),
            ciba,
            kek,
        }
    }

    /// The enrollment link of invitation (or recovery) `token`.
    fn enrollment_link(&self, token: &str) -> String {
        format!("{}{}", self.public_url, invitations::enrollment_path(token))
    }

    /// The change this session asked for, while it is fresh.
    async fn pending(&self, session: &Session) -> UserResult<PendingChange> {
        let pending: Option<PendingChange> = session.get(PENDING_CHANGE).await.map_err(internal)?;
        match pending {
            Some(p) if self.ciba.now() - p.asked_at < PENDING_CHANGE_MS => Ok(p),
            _ => Err(UiError::NotFound(
                "Nothing is waiting for your confirmation: ask for the change again from the approvers page.".into(),
            )),
        }
    }

    async fn put_flash(&self, session: &Session, flash: &Flash) -> UserResult<()> {
        let json = serde_json::to_string(flash).map_err(internal)?;
        let sealed = self.kek.seal(FLASH_LABEL, &json);
        session.insert(FLASH, sealed).await.map_err(internal)
    }

    /// The flash the session carries, if `wanted` accepts it; it is gone from the session then.
    async fn take_flash(
        &self,
        session: &Session,
        wanted: impl Fn(&Flash) -> bool,
    ) -> UserResult<Flash> {
        let sealed: Option<String> = session.get(FLASH).await.map_err(internal)?;
        let Some(sealed) = sealed else {
            return Ok(Flash::default());
        };
        let flash = self
            .kek
            .open(FLASH_LABEL, &sealed)
            .ok()
            .and_then(|json| serde_json::from_str::<Flash>(&json).ok());
        match flash {
            Some(flash) if wanted(&flash) => {
                session.remove::<String>(FLASH).await.map_err(internal)?;
                Ok(flash)
            }
            Some(_) => Ok(Flash::default()),
            None => {
                session.remove::<String>(FLASH).await.map_err(internal)?;
                Ok(Flash::default())
            }
        }
    }
}

/// The session key of the change waiting for the admin's passkey, and how long it waits.
const PENDING_CHANGE: &str = "admin_change";
const PENDING_CHANGE_MS: Millis = 10 * 60 * 1000;

/// A change to who can approve that an admin asked for, and once the prompt is out, its ceremony.
#[derive(serde::Serialize, serde::Deserialize)]
struct PendingChange {
    change: Change,
    description: String,
    back: String,
    asked_at: Millis,
    ceremony: Option<Ceremony>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Ceremony {
    state: String,
    nonce: Vec<u8>,
}

/// What the approvers page says once a confirmed change is made.
fn done_message(change: &Change) -> &'static str {
    match change {
        Change::Invite { .. } => "The enrollment link is made.",
        Change::Promote { .. } => "They are an admin now.",
        Change::Demote { .. } => "They are an approver only now.",
        Change::Disable { .. } => {
            "They are disabled: their sessions have ended and their pending requests are withdrawn."
        }
        Change::RevokePasskey { .. } => "The passkey is revoked: sessions made with it have ended.",
        Change::StartRecovery { .. } => {
            "The recovery is started: a second admin approves it from this page."
        }
        Change::ApproveRecovery { .. } => "The recovery is approved.",
        Change::CancelRecovery { .. } => "The recovery is cancelled: it can never be approved now.",
        Change::CreateGroup { .. } => {
            "The group is created. Add its members, then let agents address it."
        }
        Change::AddToGroup { .. } => {
            "They are in the group: requests made to it from now on reach them."
        }
        Change::RemoveFromGroup { .. } => {
            "They are out of the group: requests made to it from now on do not reach them."
        }
        Change::AllowGroup { .. } => "The agent may address the group now.",
        Change::DisallowGroup { .. } => "The agent may no longer address the group.",
        Change::SetPolicy { .. } => "The policy is in force for requests made from now on.",
        Change::Delegate { .. } => {
            "The delegation is set: requests made while it runs go to the delegate."
        }
        Change::EndDelegation { .. } => {
            "The delegation is over: requests go to the approver again."
        }
        Change::RetirePolicy { .. } => {
            "The policy is retired: requests made from now on are not held to it."
        }
    }
}

/// The console page a change is asked for on, where its outcome is said: (flash key, address).
fn change_page(change: &Change) -> (&'static str, &'static str) {
    if change.is_about_groups() {
        ("groups", "/admin/groups")
    } else {
        ("approvers", "/admin/approvers")
    }
}

/// The sealing label of a flash.
const FLASH_LABEL: &str = "countersign/admin-flash";

/// The session key of what the next agents page says once: a secret just issued, or a refusal.
const FLASH: &str = "admin_flash";

/// Said once on the next admin page it is for.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Flash {
    /// The page: "agents", "agent:<client_id>" or "approvers".
    page: String,
    /// A client secret just issued.
    secret: Option<String>,
    /// An enrollment link just made, and for whom.
    invite: Option<(String, String)>,
    /// The link is a recovery's.
    #[serde(default)]
    recovery: bool,
    message: Option<String>,
    error: Option<String>,
}

impl Flash {
    fn to(page: impl Into<String>) -> Flash {
        Flash {
            page: page.into(),
            ..Flash::default()
        }
    }
}

fn agent_line(agent: AgentSummary) -> AgentLine {
    let c = agent.client;
    AgentLine {
        name: c.name,
        delivery: c.delivery_mode,
        scopes: c.scopes,
        resource_server: c.resource_server != 0,
        dpop: c.dpop_bound != 0,
        disabled: c.disabled != 0,
        requests: agent.counts.requests,
        approved: agent.counts.approved,
        denied: agent.counts.denied,
        id: c.id,
    }
}

fn admins_only(user: &SignedIn) -> UserResult<()> {
    if user.me.admin {
        Ok(())
    } else {
        Err(UiError::Forbidden("This is for admins only.".into()))
    }
}

fn refusal(e: HistoryError) -> UiError {
    match e {
        HistoryError::BadFilter(why) => UiError::Invalid(why),
        HistoryError::NotFound => UiError::NotFound("There is no such request.".into()),
        HistoryError::Store(e) => internal(e),
        HistoryError::Ciba(e) => internal(e),
    }
}

/// A moment as admins read it: UTC to the minute.
fn utc(ms: Millis) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// Day `day` (days since the Unix epoch) as YYYY-MM-DD.
fn utc_day(day: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::from_unix_timestamp(day * 86_400)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// How the outcome reached the agent, if there is anything to say.
fn delivery(entry: &Entry) -> Option<String> {
    let name = |by: Channel| match by {
        Channel::Ping => "Ping",
        Channel::Push => "Push",
    };
    Some(match entry.delivery.as_ref()? {
        Delivery::Collected(at) => format!("Tokens collected {}", utc(*at)),
        Delivery::NotCollected => "Tokens not collected yet".into(),
        Delivery::Delivered { by, at } => format!("{} delivered {}", name(*by), utc(*at)),
        Delivery::Trying {
            by,
            tries,
            last_error: Some(error),
        } => format!(
            "{} not delivered yet ({tries} tries; last: {error})",
            name(*by)
        ),
        Delivery::Trying { by, .. } => format!("{} being delivered", name(*by)),
    })
}

fn line(entry: Entry) -> HistoryLine {
    HistoryLine {
        id: page_ref(&entry.id),
        status: entry.status,
        asked: utc(entry.asked_at),
        decided: entry.decided_at.map(|at| format!("Decided {}", utc(at))),
        delivery: delivery(&entry),
        action: entry.action,
        target: entry.target,
        client_name: entry.client_name,
        approver_name: entry.approver_name,
    }
}

#[async_trait]
impl AdminService for AdminPages {
    async fn history(&self, user: &SignedIn, query: HistoryQuery) -> UserResult<HistoryPage> {
        admins_only(user)?;
        let filters = Filters {
            status: query.status.as_deref(),
            agent: query.agent.as_deref(),
            approver: query.approver.as_deref(),
            text: query.q.as_deref(),
            from: query.from.as_deref(),
            until: query.until.as_deref(),
            after: query.after.as_deref(),
        };
        let page = self.history.page(&filters).await.map_err(refusal)?;
        let agents = self
            .ciba
            .store()
            .clients()
            .await
            .map_err(internal)?
            .into_iter()
            .map(|c| FilterOption {
                id: c.id,
                label: c.name,
            })
            .collect();
        let approvers = approvers::list(self.ciba.store())
            .await
            .map_err(internal)?
            .into_iter()
            .map(|a| FilterOption {
                label: format!("{} ({})", a.name, a.email),
                id: a.id,
            })
            .collect();
        Ok(HistoryPage {
            lines: page.entries.into_iter().map(line).collect(),
            next: page.next,
            agents,
            approvers,
        })
    }

    async fn overview(&self, user: &SignedIn) -> UserResult<OverviewView> {
        admins_only(user)?;
        let overview = overview::overview(&self.ciba).await.map_err(internal)?;
        let timing = |t: overview::Timing| TimingView {
            name: t.name,
            decided: t.decided,
            approved: t.approved,
            median_ms: t.median_ms,
            p90_ms: t.p90_ms,
        };
        Ok(OverviewView {
            days: overview
                .days
                .into_iter()
                .map(|d| DayView {
                    date: utc_day(d.day),
                    requests: d.requests,
                    approved: d.approved,
                    denied: d.denied,
                    expired: d.expired,
                })
                .collect(),
            agents: overview.agents.into_iter().map(timing).collect(),
            approvers: overview.approvers.into_iter().map(timing).collect(),
        })
    }

    async fn agents(&self, user: &SignedIn) -> UserResult<AgentsView> {
        admins_only(user)?;
        let flash = self
            .take_flash(&user.session, |f| f.page == "agents")
            .await?;
        let agents = self.agents.list().await.map_err(internal)?;
        Ok(AgentsView {
            agents: agents.into_iter().map(agent_line).collect(),
            error: flash.error,
        })
    }

    async fn agent(&self, user: &SignedIn, id: &str) -> UserResult<AgentView> {
        admins_only(user)?;
        let agent = self
            .agents
            .get(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| UiError::NotFound("There is no such agent.".into()))?;
        // Said once, and only on the page of the agent it is about.
        let flash = self
            .take_flash(&user.session, |f| f.page == format!("agent:{id}"))
            .await?;
        Ok(AgentView {
            auth_method: agent.client.auth_method.clone(),
            notify_url: agent.client.notify_url.clone(),
            registered: utc(agent.client.created_at),
            agent: agent_line(agent),
            new_secret: flash.secret,
            message: flash.message,
            error: flash.error,
        })
    }

    async fn approvers(&self, user: &SignedIn) -> UserResult<ApproversView> {
        admins_only(user)?;
        let flash = self
            .take_flash(&user.session, |f| f.page == "approvers")
            .await?;
        let approvers = self.approvers.list().await.map_err(internal)?;
        let invite = flash.invite.map(|(email, link)| InviteView {
            qr_svg: qr_svg(&link),
            email,
            link,
            recovery: flash.recovery,
        });
        let recoveries = self
            .approvers
            .open_recoveries()
            .await
            .map_err(internal)?
            .into_iter()
            .map(|r| RecoveryLine {
                id: r.id,
                approver: format!("{} ({})", r.approver.name, r.approver.email),
                started_by: r.started_by,
                started: utc(r.started_at),
            })
            .collect();
        Ok(ApproversView {
            approvers: approvers
                .into_iter()
                .map(|a| ApproverLine {
                    admin: a.approver.role == Role::Admin,
                    disabled: a.approver.disabled,
                    passkeys: a
                        .passkeys
                        .into_iter()
                        .map(|p| PasskeyLine {
                            credential_id: p.credential_id,
                            name: p.name,
                            added: utc(p.created_at),
                            last_used: p.last_used_at.map(utc),
                            suspended: p
                                .suspended_reason
                                .or(p.suspended_at.map(|_| "suspended".to_owned())),
                        })
                        .collect(),
                    id: a.approver.id,
                    name: a.approver.name,
                    email: a.approver.email,
                })
                .collect(),
            invite,
            recoveries,
            message: flash.message,
            error: flash.error,
        })
    }

    async fn groups(&self, user: &SignedIn) -> UserResult<GroupsView> {
        admins_only(user)?;
        let flash = self
            .take_flash(&user.session, |f| f.page == "groups")
            .await?;
        let store = self.ciba.store();
        let people = approvers::list(store).await.map_err(internal)?;
        let agents = self.agents.list().await.map_err(internal)?;
        let agent_name: HashMap<String, String> = agents
            .iter()
            .map(|a| (a.client.id.clone(), a.client.name.clone()))
            .collect();
        let members = store.group_members().await.map_err(internal)?;
        let allowed = store.client_groups().await.map_err(internal)?;
        let groups = store.groups().await.map_err(internal)?;
        let group_name: HashMap<String, String> = groups
            .iter()
            .map(|g| (g.id.clone(), g.name.clone()))
            .collect();
        let option = |id: &str, label: String| FilterOption {
            id: id.to_owned(),
            label,
        };
        let policies = store
            .newest_policies()
            .await
            .map_err(internal)?
            .into_iter()
            .map(|row| {
                let covers = crate::ciba::quorum::ApprovalPolicy::from_row(&row)
                    .map_or_else(|e| format!("unreadable ({e})"), |p| p.matcher.describe());
                PolicyLine {
                    agent: row.client_id.as_ref().map_or("Any agent".into(), |c| {
                        agent_name.get(c).cloned().unwrap_or_else(|| c.clone())
                    }),
                    approvers: row
                        .group_id
                        .as_ref()
                        .map_or("Those the request is addressed to".into(), |g| {
                            format!("Group {}", group_name.get(g).cloned().unwrap_or_default())
                        })
                        + &match (row.escalate_after_secs, &row.escalation_group_id) {
                            (Some(secs), Some(g)) => format!(
                                "; after {} minutes open, also group {}",
                                secs / 60,
                                group_name.get(g).cloned().unwrap_or_default()
                            ),
                            _ => String::new(),
                        },
                    covers,
                    active: row.active != 0,
                    approvals: row.approvals,
                    version: row.version,
                    name: row.name,
                    id: row.id,
                }
            })
            .collect();
        Ok(GroupsView {
            groups: groups
                .into_iter()
                .map(|g| GroupLine {
                    members: members
                        .iter()
                        .filter(|m| m.group_id == g.id)
                        .map(|m| {
                            let off = if m.disabled != 0 { ", disabled" } else { "" };
                            option(&m.approver_id, format!("{} ({}{off})", m.name, m.email))
                        })
                        .collect(),
                    agents: allowed
                        .iter()
                        .filter(|(_, group)| *group == g.id)
                        .map(|(agent, _)| {
                            option(agent, agent_name.get(agent).cloned().unwrap_or_default())
                        })
                        .collect(),
                    id: g.id,
                    name: g.name,
                })
                .collect(),
            policies,
            delegations: store
                .current_delegations(self.ciba.now())
                .await
                .map_err(internal)?
                .into_iter()
                .map(|d| {
                    let named = |id: &str| {
                        people
                            .iter()
                            .find(|a| a.id == id)
                            .map_or_else(|| id.to_owned(), |a| format!("{} ({})", a.name, a.email))
                    };
                    DelegationLine {
                        approver: named(&d.approver_id),
                        delegate: named(&d.delegate_id),
                        period: format!(
                            "from {} until {}",
                            crate::admin::groups::utc_minute(d.starts_at),
                            crate::admin::groups::utc_minute(d.ends_at)
                        ),
                        running: d.starts_at <= self.ciba.now(),
                        id: d.id,
                    }
                })
                .collect(),
            approvers: people
                .iter()
                .filter(|a| !a.disabled)
                .map(|a| option(&a.id, format!("{} ({})", a.name, a.email)))
                .collect(),
            agents: agents
                .iter()
                .map(|a| option(&a.client.id, a.client.name.clone()))
                .collect(),
            message: flash.message,
            error: flash.error,
        })
    }

    async fn pending_change(&self, user: &SignedIn) -> UserResult<PendingChangeView> {
        admins_only(user)?;
        let pending = self.pending(&user.session).await?;
        Ok(PendingChangeView {
            description: pending.description,
            back: pending.back,
        })
    }

    async fn start_change(&self, user: &SignedIn) -> UserResult<RequestChallengeResponse> {
        admins_only(user)?;
        let mut pending = self.pending(&user.session).await?;
        let admin_id = user.approver_id.clone();
        let change = pending.change.clone();
        let bind = move |nonce: &[u8]| change_challenge(&admin_id, &change, nonce);
        let challenge = self
            .verifier
            .challenge(&user.approver_id, &bind)
            .await
            .map_err(passkey_refusal)?
            .ok_or_else(|| {
                UiError::Forbidden("You have no usable passkey to confirm this with.".into())
            })?;
        pending.ceremony = Some(Ceremony {
            state: challenge.state,
            nonce: challenge.nonce,
        });
        user.session
            .insert(PENDING_CHANGE, pending)
            .await
            .map_err(internal)?;
        Ok(challenge.options)
    }

    async fn confirm_change(
        &self,
        user: &SignedIn,
        assertion: PublicKeyCredential,
    ) -> UserResult<String> {
        admins_only(user)?;
        let pending = self.pending(&user.session).await?;
        let Some(ceremony) = pending.ceremony else {
            return Err(UiError::Conflict("Confirm the change again.".into()));
        };
        // One assertion, one try: a failed confirmation asks for the change again.
        user.session
            .remove::<PendingChange>(PENDING_CHANGE)
            .await
            .map_err(internal)?;
        let evidence = self
            .verifier
            .verify(&user.approver_id, &ceremony.state, &assertion)
            .await
            .map_err(passkey_refusal)?
            .evidence;
        let confirmation = Confirmation {
            credential_id: evidence.credential_id,
            change: pending.change,
            assertion: Authorisation {
                nonce: base64url(&ceremony.nonce),
                authenticator_data: base64url(&evidence.authenticator_data),
                client_data_json: base64url(&evidence.client_data_json),
                signature: base64url(&evidence.signature),
            },
        };
        let admin = Admin {
            id: &user.approver_id,
            email: &user.me.email,
        };
        let (page, _) = change_page(&confirmation.change);
        let flash = match self.approvers.confirm(&admin, &confirmation).await {
            Ok(Done::Invited { email, token }) => Flash {
                invite: Some((email, self.enrollment_link(&token))),
                ..Flash::to(page)
            },
            Ok(Done::Recovered { email, token }) => Flash {
                invite: Some((email, self.enrollment_link(&token))),
                recovery: true,
                ..Flash::to(page)
            },
            Ok(Done::Changed) => Flash {
                message: Some(done_message(&confirmation.change).into()),
                ..Flash::to(page)
            },
            Err(ApproverChangeError::Store(e)) => return Err(internal(e)),
            Err(e) => Flash {
                error: Some(e.to_string()),
                ..Flash::to(page)
            },
        };
        self.put_flash(&user.session, &flash).await?;
        Ok(pending.back)
    }

    async fn admin_log(&self, user: &SignedIn) -> UserResult<AdminLogView> {
        admins_only(user)?;
        let rows = self.ciba.store().admin_log(200).await.map_err(internal)?;
        Ok(AdminLogView {
            entries: rows
                .into_iter()
                .map(|r| AdminLogLine {
                    when: utc(r.at),
                    admin: r.admin_email,
                    action: r.action,
                    subject: r.subject,
                    detail: r.detail,
                })
                .collect(),
        })
    }

    async fn history_detail(&self, user: &SignedIn, id: &str) -> UserResult<HistoryDetail> {
        admins_only(user)?;
        let detail = self.history.detail(id).await.map_err(refusal)?;
        let now = self.ciba.now();
        let entry = &detail.entry;
        Ok(HistoryDetail {
            request: statement_view(&detail.request, entry.client_name.clone(), now),
            approver_name: entry.approver_name.clone(),
            approver_email: entry.approver_email.clone(),
            asked: utc(entry.asked_at),
            decided: entry.decided_at.map(utc),
            raw_request: detail.raw_request,
            // A quorum's approvals each have their record; their checks say whose they are.
            records: detail
                .records
                .iter()
                .map(|(r, _)| serde_json::to_string_pretty(&record_json(r)).unwrap_or_default())
                .collect(),
            checks: {
                let several = detail.records.len() > 1;
                let mut names = HashMap::new();
                for (record, _) in &detail.records {
                    if several && !names.contains_key(&record.approver_id) {
                        let name = approvers::by_id(self.ciba.store(), &record.approver_id)
                            .await
                            .map_err(internal)?
                            .map_or_else(|| record.approver_id.clone(), |a| a.email);
                        names.insert(record.approver_id.clone(), name);
                    }
                }
                detail
                    .records
                    .into_iter()
                    .flat_map(|(record, checks)| {
                        let whose = names.get(&record.approver_id).cloned();
                        checks.into_iter().map(move |c| CheckView {
                            name: match &whose {
                                Some(who) => format!("{}: {}", who, c.name),
                                None => c.name.to_owned(),
                            },
                            passed: c.problems.is_empty(),
                            detail: if c.problems.is_empty() {
                                c.note.map(str::to_owned)
                            } else {
                                Some(c.problems.join("; "))
                            },
                        })
                    })
                    .collect()
            },
            delivery: delivery(entry),
        })
    }
}

/// `GET /admin/export?format=csv|jsonl&…filters`: the filtered history (every page), streamed as it
/// is read; admins only.
async fn export(
    State(console): State<Console>,
    _admin: FormAdmin,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let pages = console.pages;
    let refuse = |status: StatusCode, why: &str| (status, why.to_owned()).into_response();
    let csv = match params.get("format").map(String::as_str) {
        Some("csv") => true,
        Some("jsonl") => false,
        _ => return refuse(StatusCode::BAD_REQUEST, "format must be csv or jsonl"),
    };
    let param = |name: &str| params.get(name).map(String::as_str);
    let filters = Filters {
        status: param("status"),
        agent: param("agent"),
        approver: param("approver"),
        text: param("q"),
        from: param("from"),
        until: param("until"),
        after: None,
    };
    let rows = match pages.history.export(&filters) {
        Ok(rows) => rows,
        Err(HistoryError::BadFilter(why)) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, &why),
        Err(_) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "Please try again."),
    };
    let lines = rows.map(move |entry| match entry {
        Ok(entry) => Ok(if csv {
            csv_line(&entry)
        } else {
            json_line(&entry)
        }),
        Err(e) => {
            // The status line has gone out: a cut-off body is the only way left to say it failed.
            tracing::error!(error = %e, "the history export failed part way");
            Err(std::io::Error::other("the history export failed"))
        }
    });
    let (content_type, name, head) = if csv {
        (
            "text/csv; charset=utf-8",
            "countersign-history.csv",
            csv_header(),
        )
    } else {
        ("application/jsonl", "countersign-history.jsonl", Vec::new())
    };
    let body = futures::stream::once(async move { Ok(head) }).chain(lines);
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

const CSV_COLUMNS: [&str; 10] = [
    "request",
    "asked_at",
    "agent",
    "approver",
    "action",
    "target",
    "status",
    "decided_at",
    "delivery",
    "agent_id",
];

fn csv_header() -> Vec<u8> {
    csv_record(CSV_COLUMNS.map(str::to_owned).to_vec())
}

fn csv_record(cells: Vec<String>) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    // Writing to memory cannot fail.
    let _ = writer.write_record(&cells);
    writer.into_inner().unwrap_or_default()
}

/// A cell a spreadsheet would read as a formula (agent text can start with anything) is kept as
/// text with a leading apostrophe (OWASP's advice on CSV injection).
fn inert(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

fn rfc3339(ms: Millis) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn csv_line(entry: &Entry) -> Vec<u8> {
    csv_record(
        [
            page_ref(&entry.id),
            rfc3339(entry.asked_at),
            entry.client_name.clone(),
            entry.approver_email.clone(),
            entry.action.clone(),
            entry.target.clone(),
            entry.status.name().to_owned(),
            entry.decided_at.map(rfc3339).unwrap_or_default(),
            delivery(entry).unwrap_or_default(),
            entry.client_id.clone(),
        ]
        .into_iter()
        .map(inert)
        .collect(),
    )
}

fn json_line(entry: &Entry) -> Vec<u8> {
    let mut line = serde_json::json!({
        "request": page_ref(&entry.id),
        "asked_at": rfc3339(entry.asked_at),
        "agent": entry.client_name,
        "agent_id": entry.client_id,
        "approver": entry.approver_email,
        "action": entry.action,
        "target": entry.target,
        "status": entry.status.name(),
        "decided_at": entry.decided_at.map(rfc3339),
        "delivery": delivery(entry),
    })
    .to_string()
    .into_bytes();
    line.push(b'\n');
    line
}

/// What the console's form posts and the export need.
#[derive(Clone)]
pub struct Console {
    pub pages: Arc<AdminPages>,
    pub identity: Arc<IdentityApp>,
}

/// The console's form posts and the history export. The pages themselves are server functions
/// (`app::api::admin`); both check the admin role on the server.
pub fn routes(console: Console) -> Router {
    Router::new()
        .route("/admin/export", get(export))
        .route("/admin/agents/register", post(register_agent))
        .route("/admin/agents/{id}/settings", post(change_agent_settings))
        .route("/admin/agents/{id}/{change}", post(change_agent))
        .route("/admin/approvers/invite", post(invite_approver))
        .route(
            "/admin/approvers/{id}/passkeys/{credential_id}/revoke",
            post(revoke_passkey),
        )
        .route("/admin/approvers/{id}/{change}", post(change_approver))
        .route("/admin/groups", post(create_group))
        .route("/admin/groups/{id}/members", post(add_member))
        .route(
            "/admin/groups/{id}/members/{approver}/remove",
            post(remove_member),
        )
        .route("/admin/groups/{id}/agents", post(allow_agent))
        .route(
            "/admin/groups/{id}/agents/{agent}/remove",
            post(disallow_agent),
        )
        .route("/admin/policies", post(set_policy))
        .route("/admin/policies/{id}/retire", post(retire_policy))
        .route("/admin/delegations", post(delegate))
        .route("/admin/delegations/{id}/end", post(end_delegation))
        .route("/admin/confirm/cancel", post(cancel_change))
        .route("/admin/recoveries/{id}/approve", post(approve_recovery))
        .route("/admin/recoveries/{id}/cancel", post(cancel_recovery))
        .with_state(console)
}

/// The signed-in admin a console request comes from, and their session; anyone else is answered
/// 401 (signed out) or 403 (not an admin) before the handler runs.
struct FormAdmin {
    approver: Approver,
    session: Session,
}

impl FormAdmin {
    fn who(&self) -> Admin<'_> {
        Admin {
            id: &self.approver.id,
            email: &self.approver.email,
        }
    }
}

impl FromRequestParts<Console> for FormAdmin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        let session = Session::from_request_parts(parts, console)
            .await
            .map_err(IntoResponse::into_response)?;
        match console.identity.approver_of(&session).await {
            Ok(Some(approver)) if approver.role == Role::Admin => {
                Ok(FormAdmin { approver, session })
            }
            Ok(Some(_)) => Err((StatusCode::FORBIDDEN, "This is for admins only.").into_response()),
            Ok(None) => Err((StatusCode::UNAUTHORIZED, "Please sign in.").into_response()),
            Err(_) => Err((StatusCode::INTERNAL_SERVER_ERROR, "Please try again.").into_response()),
        }
    }
}

/// A form's value for `name`, trimmed, if one was given.
fn form_field(form: &[(String, String)], name: &str) -> Option<String> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Every value a form gives for `name` (checkboxes).
fn form_values(form: &[(String, String)], name: &str) -> Vec<String> {
    form.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

async fn flash_and_go(pages: &AdminPages, session: &Session, flash: Flash, to: &str) -> Response {
    if pages.put_flash(session, &flash).await.is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "Please try again.").into_response();
    }
    Redirect::to(to).into_response()
}

/// A refusal said on `page`, then back to it.
async fn refuse_on(
    pages: &AdminPages,
    session: &Session,
    page: String,
    to: &str,
    why: String,
) -> Response {
    let flash = Flash {
        error: Some(why),
        ..Flash::to(page)
    };
    flash_and_go(pages, session, flash, to).await
}

/// Said once on `page`, then back to it.
async fn say_on(
    pages: &AdminPages,
    session: &Session,
    page: String,
    to: &str,
    message: &str,
) -> Response {
    let flash = Flash {
        message: Some(message.into()),
        ..Flash::to(page)
    };
    flash_and_go(pages, session, flash, to).await
}

/// An agent's page: its flash key and its address.
fn agent_page(id: &str) -> (String, String) {
    (format!("agent:{id}"), format!("/admin/agents/{id}"))
}

fn no_such_agent() -> Response {
    (StatusCode::NOT_FOUND, "There is no such agent.").into_response()
}

/// The delivery mode a form chose (poll when it chose none).
fn form_delivery(form: &[(String, String)]) -> Result<DeliveryMode, String> {
    form_field(form, "delivery")
        .as_deref()
        .unwrap_or("poll")
        .parse::<DeliveryMode>()
}

/// A registration refusal in the console's words (the checks speak of the CLI's flags).
fn client_refusal(e: &ClientError) -> String {
    e.to_string().replace("--notify-url", "a notification URL")
}

/// `POST /admin/agents/register` (the agents page's form).
async fn register_agent(
    State(console): State<Console>,
    admin: FormAdmin,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let pages = &console.pages;
    let field = |name: &str| form_field(&form, name);
    let delivery = match form_delivery(&form) {
        Ok(mode) => mode,
        Err(why) => {
            return refuse_on(pages, &admin.session, "agents".into(), "/admin/agents", why).await
        }
    };
    let new = NewClient {
        name: field("name").unwrap_or_default(),
        delivery_mode: delivery,
        notify_url: field("notify_url"),
        scopes: form_values(&form, "scope"),
        auth_method: AuthMethod::ClientSecretBasic,
        jwks: None,
        resource_server: field("resource_server").is_some(),
        dpop_bound: field("dpop").is_some(),
    };
    match pages.agents.register(&admin.who(), new).await {
        Ok(credentials) => {
            let to = format!("/admin/agents/{}", credentials.client_id);
            let flash = Flash {
                secret: credentials.client_secret,
                message: Some("The agent is registered.".into()),
                ..Flash::to(format!("agent:{}", credentials.client_id))
            };
            flash_and_go(pages, &admin.session, flash, &to).await
        }
        Err(ClientError::Store(e)) => internal_answer(e),
        Err(e) => {
            let why = client_refusal(&e);
            refuse_on(pages, &admin.session, "agents".into(), "/admin/agents", why).await
        }
    }
}

/// `POST /admin/agents/{id}/settings` (the agent page's delivery and scopes form).
async fn change_agent_settings(
    State(console): State<Console>,
    admin: FormAdmin,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let pages = &console.pages;
    let (page, to) = agent_page(&id);
    let delivery = match form_delivery(&form) {
        Ok(mode) => mode,
        Err(why) => return refuse_on(pages, &admin.session, page, &to, why).await,
    };
    let settings = Settings {
        delivery_mode: delivery,
        notify_url: form_field(&form, "notify_url"),
        scopes: form_values(&form, "scope"),
    };
    match pages
        .agents
        .change_settings(&admin.who(), &id, &settings)
        .await
    {
        Ok(()) => {
            let saved = "Saved: every server uses the new settings within a second.";
            say_on(pages, &admin.session, page, &to, saved).await
        }
        Err(ClientError::NotFound(_)) => no_such_agent(),
        Err(ClientError::Store(e)) => internal_answer(e),
        Err(e) => refuse_on(pages, &admin.session, page, &to, client_refusal(&e)).await,
    }
}

/// `POST /admin/agents/{id}/rotate`, `…/disable` and `…/enable`.
async fn change_agent(
    State(console): State<Console>,
    admin: FormAdmin,
    Path((id, change)): Path<(String, String)>,
) -> Response {
    let pages = &console.pages;
    let (page, to) = agent_page(&id);
    let disabled = match change.as_str() {
        "rotate" => return rotate_agent_secret(pages, &admin, &id).await,
        "disable" => true,
        "enable" => false,
        _ => return (StatusCode::NOT_FOUND, "There is no such change.").into_response(),
    };
    match pages.agents.set_disabled(&admin.who(), &id, disabled).await {
        Ok(true) => {
            let message = if disabled {
                "The agent is disabled: it can no longer authenticate, and its requests so far are withdrawn for good."
            } else {
                "The agent is enabled again. Its requests made before it was disabled stay withdrawn."
            };
            say_on(pages, &admin.session, page, &to, message).await
        }
        Ok(false) => no_such_agent(),
        Err(e) => internal_answer(e),
    }
}

async fn rotate_agent_secret(pages: &AdminPages, admin: &FormAdmin, id: &str) -> Response {
    let (page, to) = agent_page(id);
    match pages.agents.rotate_secret(&admin.who(), id).await {
        Ok(credentials) => {
            let flash = Flash {
                secret: credentials.client_secret,
                message: Some("A new secret is issued; the old one no longer works.".into()),
                ..Flash::to(page)
            };
            flash_and_go(pages, &admin.session, flash, &to).await
        }
        Err(ClientError::NotFound(_)) => no_such_agent(),
        Err(ClientError::Store(e)) => internal_answer(e),
        Err(e) => refuse_on(pages, &admin.session, page, &to, e.to_string()).await,
    }
}

fn internal_answer(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "an admin change failed");
    (StatusCode::INTERNAL_SERVER_ERROR, "Please try again.").into_response()
}

/// `link` as a QR code, in SVG, for a phone to scan.
fn qr_svg(link: &str) -> String {
    match qrcode::QrCode::new(link.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}

/// `POST /admin/approvers/invite` (the approvers page's form).
async fn invite_approver(
    State(console): State<Console>,
    admin: FormAdmin,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let change = Change::Invite {
        email: form_field(&form, "email").unwrap_or_default(),
        name: form_field(&form, "name"),
        admin: form_field(&form, "admin").is_some(),
    };
    ask_to_confirm(&console.pages, &admin, change).await
}

/// `POST /admin/approvers/{id}/promote`, `…/demote` and `…/disable`.
async fn change_approver(
    State(console): State<Console>,
    admin: FormAdmin,
    Path((id, change)): Path<(String, String)>,
) -> Response {
    let change = match change.as_str() {
        "promote" => Change::Promote { approver: id },
        "demote" => Change::Demote { approver: id },
        "disable" => Change::Disable { approver: id },
        "recover" => Change::StartRecovery { approver: id },
        _ => return (StatusCode::NOT_FOUND, "There is no such change.").into_response(),
    };
    ask_to_confirm(&console.pages, &admin, change).await
}

/// `POST /admin/approvers/{id}/passkeys/{credential_id}/revoke`.
async fn revoke_passkey(
    State(console): State<Console>,
    admin: FormAdmin,
    Path((id, credential_id)): Path<(String, String)>,
) -> Response {
    let change = Change::RevokePasskey {
        approver: id,
        credential: credential_id,
    };
    ask_to_confirm(&console.pages, &admin, change).await
}

/// `POST /admin/recoveries/{id}/approve`.
async fn approve_recovery(
    State(console): State<Console>,
    admin: FormAdmin,
    Path(id): Path<String>,
) -> Response {
    let change = Change::ApproveRecovery { recovery: id };
    ask_to_confirm(&console.pages, &admin, change).await
}

/// `POST /admin/recoveries/{id}/cancel`.
async fn cancel_recovery(
    State(console): State<Console>,
    admin: FormAdmin,
    Path(id): Path<String>,
) -> Response {
    let change = Change::CancelRecovery { recovery: id };
    ask_to_confirm(&console.pages, &admin, change).await
}

/// `POST /admin/groups` (the groups page's form).
async fn create_group(
    State(console): State<Console>,
    admin: FormAdmin,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let change = Change::CreateGroup {
        name: form_field(&form, "name").unwrap_or_default(),
    };
    ask_to_confirm(&console.pages, &admin, change).await
}

/// `POST /admin/groups/{id}/members`.
async fn add_member(
    State(console): State<Console>,
    admin: FormAdmin,
    Path(group): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let change = Change::AddToGroup {
        group,
        approver: form_field(&form, "approver").unwrap_or_default(),
    };
    ask_to_confirm(&console.pages, &admin, change).await
}

/// `POST /admin/groups/{id}/members/{approver}/remove`.
async fn remove_member(
    State(console): State<Console>,
    admin: FormAdmin,
    Path((group, approver)): Path<(String, String)>,
) -> Response {
    let change = Change::RemoveFromGroup { group, approver };
    ask_to_confirm(&console.pages, &admin, change).await
}

/// `POST /admin/groups/{id}/agents`.
async fn allow_agent(
    State(console): State<Console>,
    admin: FormAdmin,
    Path(group): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let change = Change::AllowGroup {
        agent: form_field(&form, "agent").unwrap_or_default(),
        group,
    };
    ask_to_confirm(&console.pages, &admin, change).await
}

/// `POST /admin/groups/{id}/agents/{agent}/remove`.
async fn disallow_agent(
    State(console): State<Console>,
    admin: FormAdmin,
    Path((group, agent)): Path<(String, String)>,
) -> Response {
    let change = Change::DisallowGroup { agent, group };
    ask_to_confirm(&console.pages, &admin, change).await
}

/// `POST /admin/policies`: a new policy, or (with `policy`) a new version of one.
async fn set_policy(
    State(console): State<Console>,
    admin: FormAdmin,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| form_field(&form, name);
    let Some(approvals) = field("approvals").and_then(|a| a.parse::<i64>().ok()) else {
        let why = "Say how many approvals the policy asks for.".to_owned();
        return refuse_on(
            &console.pages,
            &admin.session,
            "groups".into(),
            "/admin/groups",
            why,
        )
        .await;
    };
    let change = Change::SetPolicy {
        policy: field("policy"),
        name: field("name").unwrap_or_default(),
        agent: field("agent"),
        action: field("action"),
        tool: field("tool"),
        amount_above: field("amount_above"),
        irreversible: field("irreversible").is_some(),
        approvals,
        group: field("group"),
        escalate_after_mins: field("escalate_after_mins").and_then(|m| m.parse().ok()),
        escalation_group: field("escalation_group"),
    };
    ask_to_confirm(&console.pages, &admin, change).await
}

/// `POST /admin/delegations`: from the start of one UTC day (today when none) to the end of another.
async fn delegate(
    State(console): State<Console>,
    admin: FormAdmin,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let pages = &console.pages;
    let now = pages.ciba.now();
    let from = form_field(&form, "from").map(|d| crate::admin::history::day_start(&d));
    let until = form_field(&form, "until").and_then(|d| crate::admin::history::day_start(&d));
    let (Some(starts_at), Some(until)) = (from.unwrap_or(Some(now)), until) else {
        let why = "Give the days as YYYY-MM-DD.".to_owned();
        return refuse_on(pages, &admin.session, "groups".into(), "/admin/groups", why).await;
    };
    let change = Change::Delegate {
        approver: form_field(&form, "approver").unwrap_or_default(),
        delegate: form_field(&form, "delegate").unwrap_or_default(),
        starts_at,
        ends_at: until + DAY_MS,
    };
    ask_to_confirm(pages, &admin, change).await
}

const DAY_MS: Millis = 24 * 60 * 60 * 1000;

/// `POST /admin/delegations/{id}/end`.
async fn end_delegation(
    State(console): State<Console>,
    admin: FormAdmin,
    Path(delegation): Path<String>,
) -> Response {
    ask_to_confirm(&console.pages, &admin, Change::EndDelegation { delegation }).await
}

/// `POST /admin/policies/{id}/retire`.
async fn retire_policy(
    State(console): State<Console>,
    admin: FormAdmin,
    Path(policy): Path<String>,
) -> Response {
    ask_to_confirm(&console.pages, &admin, Change::RetirePolicy { policy }).await
}

/// Checks a change to who can approve and, if it can be made, sends the admin to confirm it with
/// their passkey (`/admin/confirm`); a refusal is said on the page it was asked on at once.
async fn ask_to_confirm(pages: &AdminPages, admin: &FormAdmin, change: Change) -> Response {
    let (page, back) = change_page(&change);
    let description = match pages.approvers.ask(&admin.who(), &change).await {
        Ok(description) => description,
        Err(ApproverChangeError::NotFound) => {
            return (StatusCode::NOT_FOUND, "There is no such approver.").into_response()
        }
        Err(ApproverChangeError::NoSuchPasskey) => {
            return (StatusCode::NOT_FOUND, "They have no such passkey.").into_response()
        }
        Err(ApproverChangeError::Store(e)) => return internal_answer(e),
        Err(e) => {
            let why = e.to_string();
            return refuse_on(pages, &admin.session, page.into(), back, why).await;
        }
    };
    let pending = PendingChange {
        change,
        description,
        back: back.into(),
        asked_at: pages.ciba.now(),
        ceremony: None,
    };
    if admin.session.insert(PENDING_CHANGE, pending).await.is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "Please try again.").into_response();
    }
    Redirect::to("/admin/confirm").into_response()
}

/// `POST /admin/confirm/cancel`: the waiting change is dropped.
async fn cancel_change(admin: FormAdmin) -> Response {
    let back = match admin.session.remove::<PendingChange>(PENDING_CHANGE).await {
        Ok(Some(pending)) => pending.back,
        Ok(None) => "/admin/approvers".into(),
        Err(e) => return internal_answer(e),
    };
    Redirect::to(&back).into_response()
}
