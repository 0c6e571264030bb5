//! Telling approvers of a change to who can sign as them (a passkey added), on every channel they
//! have: the port the identity rules call, delivered by `notify::notices`. A notice names the change
//! and carries no secret; the account page shows the same with each passkey's provenance.
pub struct AccountNotice {
    pub approver_id: String,
    pub email: String,
    pub name: String,
    pub title: String,
    pub body: String,
}

/// Delivers notices without holding up the change they report; each channel retries on its own.
pub trait AccountNotices: Send + Sync {
    fn tell(&self, notice: AccountNotice);
}
