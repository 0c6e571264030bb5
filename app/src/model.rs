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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// Backed up (synced) by its provider, per the authenticator's backup-state flag.
    pub synced: bool,
    pub suspended: bool,
}

/// Where a request stands, as shown to a person. The server works it out (`ciba::AuthRequest::status`);
/// the pages must say something for every case.
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
