//! Types the UI and the server share: views, not database rows.
use serde::{Deserialize, Serialize};

/// The signed-in person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub name: String,
    pub email: String,
    pub admin: bool,
}

/// What an enrollment link offers, shown before the passkey is created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationView {
    /// None for the first admin's link: the person enters name and email themselves.
    pub email: Option<String>,
    pub name: Option<String>,
    pub admin: bool,
    /// A recovery's link: the person's earlier passkeys have ended, and this one replaces them.
    pub recovery: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// When and how it was added: "Added 3 Dec 2026, confirmed with your passkey “Laptop”".
    pub added: String,
    pub last_used_at: Option<i64>,
    /// Backed up (synced) by its provider, per the authenticator's backup-state flag.
    pub synced: bool,
    pub suspended: bool,
}

/// Where a request stands, as shown to a person. The server works it out (`ciba::AuthRequest::status`);
/// the pages must say something for every case.
/// What the approver chose on the request page; the server binds the passkey challenge to exactly
/// this, a denial's reason included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "choice", rename_all = "snake_case")]
pub enum Choice {
    Approve,
    Deny { reason: Option<String> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    Pending,
    Approved,
    Denied,
    /// Approved, and the agent has collected its tokens.
    Redeemed,
    /// Ran out of time undecided: nothing was approved.
    Expired,
}

impl RequestStatus {
    /// The lowercase name, as serialised (and used as a CSS class).
    pub fn name(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Approved => "approved",
            RequestStatus::Denied => "denied",
            RequestStatus::Redeemed => "redeemed",
            RequestStatus::Expired => "expired",
        }
    }
}

/// One line of the inbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestSummary {
    pub id: String,
    pub action: String,
    pub target: String,
    pub client_name: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub status: RequestStatus,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxView {
    pub pending: Vec<RequestSummary>,
    pub recent: Vec<RequestSummary>,
    /// The server's clock (Unix ms) when this was read, so countdowns do not depend on the device's.
    pub now: i64,
}

/// Everything the request page shows: the action as the agent described it, and its context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestView {
    pub id: String,
    pub client_name: String,
    pub action: String,
    pub target: String,
    pub consequence: String,
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub reversible: Option<bool>,
    pub resource: Option<String>,
    /// The exact tool call the action is, when the MCP gate asked: the tool's name, and one line
    /// per argument, `name: value` with the value as JSON.
    pub tool: Option<String>,
    pub arguments: Vec<String>,
    pub binding_message: Option<String>,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub now: i64,
    pub status: RequestStatus,
    pub deny_reason: Option<String>,
    /// The approver's policy asks for their user_code before approving (CIBA §7.1 user_code).
    pub needs_user_code: bool,
    /// Too many wrong user codes: this request can only be denied.
    pub user_code_locked: bool,
    /// For a request shared with others (a group, or a policy asking several people): who else is
    /// involved and where it stands, in sentences.
    pub parties: Vec<String>,
    /// What the page says once it cannot be decided here (decided, by the viewer or someone else;
    /// expired; or the viewer's approval waits for others); None while the viewer can decide it.
    pub outcome: Option<String>,
}

/// The browsers that receive the signed-in person's push notifications.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushDevicesView {
    /// The server's VAPID public key (base64url): the browser's `applicationServerKey`.
    pub public_key: String,
    pub devices: Vec<PushDeviceView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushDeviceView {
    pub id: String,
    /// Browser and system, from the User-Agent at subscription ("Chrome on Android").
    pub label: String,
    pub created_at: i64,
    pub last_sent_at: Option<i64>,
    /// Deliveries that failed in a row.
    pub failures: i64,
    /// The browser showing the page holds this subscription.
    pub this_device: bool,
}

/// The admin history's filters, as they stand in the page's URL (so a view can be shared). Every
/// field is optional text; the server parses and refuses what it cannot read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryQuery {
    /// pending, approved, denied or expired.
    pub status: Option<String>,
    /// A client id.
    pub agent: Option<String>,
    /// An approver id.
    pub approver: Option<String>,
    /// Words of the action or the target.
    pub q: Option<String>,
    /// First and last day (YYYY-MM-DD, UTC), inclusive.
    pub from: Option<String>,
    pub until: Option<String>,
    /// Where the page starts: the cursor of the previous page's last line.
    pub after: Option<String>,
}

impl HistoryQuery {
    /// The query as URL parameters, without empty ones.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        [
            ("status", &self.status),
            ("agent", &self.agent),
            ("approver", &self.approver),
            ("q", &self.q),
            ("from", &self.from),
            ("until", &self.until),
            ("after", &self.after),
        ]
        .into_iter()
        .filter_map(|(name, value)| {
            value
                .as_deref()
                .filter(|v| !v.is_empty())
                .map(|v| (name, v.to_owned()))
        })
        .collect()
    }
}

/// A name to choose in a filter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterOption {
    pub id: String,
    pub label: String,
}

/// One line of the admin history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryLine {
    pub id: String,
    pub action: String,
    pub target: String,
    pub client_name: String,
    pub approver_name: String,
    pub status: RequestStatus,
    /// When it was asked and decided, in UTC ("2026-11-30 14:05 UTC"), written by the server.
    pub asked: String,
    pub decided: Option<String>,
    /// How the outcome reached the agent: "Tokens collected", "Ping delivered", "Push failed (3 tries)".
    pub delivery: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub lines: Vec<HistoryLine>,
    /// The cursor of the next (older) page, if there is one.
    pub next: Option<String>,
    pub agents: Vec<FilterOption>,
    pub approvers: Vec<FilterOption>,
}

/// One check of a decision record, as the detail page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckView {
    pub name: String,
    pub passed: bool,
    /// Why it failed, or a note on how it passed.
    pub detail: Option<String>,
}

/// Everything an admin sees about one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryDetail {
    /// The statement exactly as the approver saw it.
    pub request: RequestView,
    pub approver_name: String,
    pub approver_email: String,
    pub asked: String,
    pub decided: Option<String>,
    /// The stored request, as canonical JSON (what the record's digest covers).
    pub raw_request: String,
    /// The decision records, as JSON: one, or one per approval of a quorum; none if undecided.
    pub records: Vec<String>,
    pub checks: Vec<CheckView>,
    /// The ping or push delivery, if the agent is told that way.
    pub delivery: Option<String>,
}

/// The last days at a glance: requests per day by outcome, and decision times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverviewView {
    pub days: Vec<DayView>,
    pub agents: Vec<TimingView>,
    pub approvers: Vec<TimingView>,
}

/// One UTC day's requests by where they stand now; pending is what is left.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayView {
    /// YYYY-MM-DD.
    pub date: String,
    pub requests: i64,
    pub approved: i64,
    pub denied: i64,
    pub expired: i64,
}

/// How fast one agent's requests, or one approver's decisions, were decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimingView {
    pub name: String,
    pub decided: usize,
    pub approved: usize,
    pub median_ms: i64,
    pub p90_ms: i64,
}

/// The agents page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentsView {
    pub agents: Vec<AgentLine>,
    /// Why the last registration was refused, once.
    pub error: Option<String>,
}

/// One agent, with its last 30 days.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentLine {
    pub id: String,
    pub name: String,
    /// poll, ping or push.
    pub delivery: String,
    pub scopes: String,
    pub resource_server: bool,
    pub dpop: bool,
    pub disabled: bool,
    pub requests: i64,
    pub approved: i64,
    pub denied: i64,
}

/// One agent's page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentView {
    pub agent: AgentLine,
    pub auth_method: String,
    pub notify_url: Option<String>,
    pub registered: String,
    /// A secret just issued: shown this once.
    pub new_secret: Option<String>,
    pub message: Option<String>,
    /// Why the last change was refused, once.
    pub error: Option<String>,
}

/// The admin log, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminLogView {
    pub entries: Vec<AdminLogLine>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminLogLine {
    pub when: String,
    pub admin: String,
    pub action: String,
    pub subject: String,
    pub detail: Option<String>,
}

/// The approvers page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproversView {
    pub approvers: Vec<ApproverLine>,
    /// An enrollment link just made: shown this once.
    pub invite: Option<InviteView>,
    /// Recoveries waiting for a second admin.
    pub recoveries: Vec<RecoveryLine>,
    pub message: Option<String>,
    pub error: Option<String>,
}

/// Groups of approvers and approval policies, as the console lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupsView {
    pub groups: Vec<GroupLine>,
    pub policies: Vec<PolicyLine>,
    /// Who can be added to a group, and which agents can be allowed one.
    pub approvers: Vec<FilterOption>,
    pub agents: Vec<FilterOption>,
    /// Delegations running or to come.
    pub delegations: Vec<DelegationLine>,
    pub message: Option<String>,
    pub error: Option<String>,
}

/// An approver's requests handed to a colleague for a period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegationLine {
    pub id: String,
    pub approver: String,
    pub delegate: String,
    /// "from … until …", UTC.
    pub period: String,
    pub running: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupLine {
    pub id: String,
    pub name: String,
    /// `Name (e-mail)`, with the approver's id; disabled ones are marked.
    pub members: Vec<FilterOption>,
    /// The agents that may address it.
    pub agents: Vec<FilterOption>,
}

/// The newest version of one approval policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyLine {
    pub id: String,
    pub version: i64,
    pub name: String,
    pub agent: String,
    /// Which actions it covers, in words.
    pub covers: String,
    pub approvals: i64,
    /// Whose approvals: a group's name, or the people the request is addressed to.
    pub approvers: String,
    pub active: bool,
}

/// A recovery waiting for its second admin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryLine {
    pub id: String,
    /// Whom it recovers: name and e-mail.
    pub approver: String,
    /// The admin who started it, by e-mail.
    pub started_by: String,
    pub started: String,
}

/// A change to who can approve, waiting for the admin's passkey (`/admin/confirm`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChangeView {
    /// What it does, in a sentence.
    pub description: String,
    /// The console page it was asked from, which the admin returns to.
    pub back: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproverLine {
    pub id: String,
    pub name: String,
    pub email: String,
    pub admin: bool,
    pub disabled: bool,
    pub passkeys: Vec<PasskeyLine>,
}

/// One of an approver's passkeys, as the approvers page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyLine {
    pub credential_id: String,
    pub name: String,
    pub added: String,
    pub last_used: Option<String>,
    /// Why it is suspended, if it is.
    pub suspended: Option<String>,
}

/// A one-time enrollment link, and the same link as a QR code (SVG) to open it on a phone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteView {
    pub email: String,
    pub link: String,
    pub qr_svg: String,
    /// A recovery's link (valid an hour), not an invitation's (a day).
    pub recovery: bool,
}
