//! What admins do: read the history of every request and verify its evidence. The use-cases here
//! own the rules; `ui::admin` shows them, and refuses anyone but an admin.
pub mod agents;
pub mod approvers;
pub mod confirmation;
pub mod groups;
pub mod history;
pub mod log;
pub mod overview;

use crate::{
    ciba::Ciba,
    store::{
        admin_log::{AdminEntry, ApproverUpdate},
        StoreError,
    },
};

/// The admin making a change.
pub struct Admin<'a> {
    pub id: &'a str,
    pub email: &'a str,
}

/// What the admin log says of a change.
struct Said<'a> {
    action: &'a str,
    subject: &'a str,
    detail: Option<&'a str>,
    /// The admin's passkey assertion over the change (JSON).
    authorisation: Option<&'a str>,
}

impl Said<'_> {
    fn entry<'e>(&'e self, ciba: &Ciba, admin: &'e Admin<'_>) -> AdminEntry<'e> {
        AdminEntry {
            at: ciba.now(),
            admin_id: admin.id,
            admin_email: admin.email,
            action: self.action,
            subject: self.subject,
            detail: self.detail,
            authorisation: self.authorisation,
        }
    }
}

/// Appends what `admin` did to the admin log.
async fn record(
    ciba: &Ciba,
    admin: &Admin<'_>,
    action: &str,
    subject: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    let said = Said {
        action,
        subject,
        detail,
        authorisation: None,
    };
    ciba.store()
        .append_admin_log(&said.entry(ciba, admin), log::entry_hash)
        .await
}

/// Makes a change to who can approve and appends its entry, in one transaction; false (nothing
/// written) when there was nothing to change.
async fn change(
    ciba: &Ciba,
    admin: &Admin<'_>,
    update: ApproverUpdate<'_>,
    said: Said<'_>,
) -> Result<bool, StoreError> {
    ciba.store()
        .admin_change(update, &said.entry(ciba, admin), log::entry_hash)
        .await
}
