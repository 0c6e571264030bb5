//! What admins do: read the history of every request and verify its evidence. The use-cases here
//! own the rules; `ui::admin` shows them, and refuses anyone but an admin.
pub mod agents;
pub mod approvers;
pub mod history;
pub mod overview;

use crate::{
    ciba::Ciba,
    store::{admin_log::AdminEntry, StoreError},
};

/// The admin making a change.
pub struct Admin<'a> {
    pub id: &'a str,
    pub email: &'a str,
}

/// Appends what `admin` did to the admin log.
async fn record(
    ciba: &Ciba,
    admin: &Admin<'_>,
    action: &str,
    subject: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    ciba.store()
        .append_admin_log(&AdminEntry {
            at: ciba.now(),
            admin_id: admin.id,
            admin_email: admin.email,
            action,
            subject,
            detail,
        })
        .await
}
