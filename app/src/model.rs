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
