//! Approvers as admins keep them: inviting one (a one-time enrollment link, shown once), disabling
//! one (the offboarding `approver disable` does), revoking a passkey, and promoting to admin or
//! demoting. The last active admin can be neither demoted nor disabled: someone must be able to run
//! the console. Each change is asked for (`ask`: checked, and described for the admin), then made
//! only with the admin's passkey confirmation over it (`confirm`, `admin::confirmation`), and
//! written with its admin log entry, which keeps the confirmation, in one transaction.
use std::{collections::HashMap, sync::Arc};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

use super::{
    confirmation::{change_challenge, Change, Confirmation},
    Admin, Said,
};
use crate::{
    ciba::Ciba,
    identity::{
        accounts::Accounts,
        approvers::{self, Approver, Role},
        invitations::{self, Invitations},
    },
    store::{
        admin_log::ApproverUpdate, invitations::InvitationRow, passkeys::PasskeyRow, StoreError,
    },
};

#[derive(Debug, thiserror::Error)]
pub enum ApproverChangeError {
    #[error("{0}")]
    Invalid(String),
    #[error("there is no such approver")]
    NotFound,
    #[error("they have no such passkey")]
    NoSuchPasskey,
    #[error("the last active admin cannot be demoted or disabled: promote someone else first")]
    LastAdmin,
    #[error("Your passkey did not confirm this change ({0}), so nothing was changed.")]
    NotConfirmed(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An approver and their passkeys.
pub struct ApproverSummary {
    pub approver: Approver,
    pub passkeys: Vec<PasskeyRow>,
}

pub struct Approvers {
    ciba: Arc<Ciba>,
    invitations: Invitations,
    accounts: Accounts,
}

/// What a confirmed change did.
#[derive(Debug)]
pub enum Done {
    /// The invitation's token, shown once, and whom it is for.
    Invited {
        email: String,
        token: String,
    },
    Changed,
}

/// A change checked and ready to make.
struct Plan {
    /// For the admin, before they confirm.
    description: String,
    action: &'static str,
    subject: String,
    detail: Option<String>,
    step: Step,
}

enum Step {
    Invite {
        row: InvitationRow,
        token: String,
    },
    SetRole {
        approver: String,
        role: Role,
    },
    Disable {
        approver: String,
    },
    Revoke {
        approver: String,
        credential: String,
    },
}

impl Approvers {
    pub fn new(ciba: Arc<Ciba>, invitations: Invitations, accounts: Accounts) -> Approvers {
        Approvers {
            ciba,
            invitations,
            accounts,
        }
    }

    pub async fn list(&self) -> Result<Vec<ApproverSummary>, StoreError> {
        let store = self.ciba.store();
        let mut passkeys: HashMap<String, Vec<PasskeyRow>> = HashMap::new();
        for row in store.all_passkeys().await? {
            passkeys
                .entry(row.approver_id.clone())
                .or_default()
                .push(row);
        }
        Ok(approvers::list(store)
            .await?
            .into_iter()
            .map(|approver| ApproverSummary {
                passkeys: passkeys.remove(&approver.id).unwrap_or_default(),
                approver,
            })
            .collect())
    }

    /// Checks `change` as the admin asks for it, before any passkey prompt: what the admin is asked
    /// to confirm, or why it cannot be made.
    pub async fn ask(
        &self,
        admin: &Admin<'_>,
        change: &Change,
    ) -> Result<String, ApproverChangeError> {
        Ok(self.plan(admin, change).await?.description)
    }

    /// Makes the change `confirmation` confirms, if the admin's own usable passkey signed a
    /// user-verified assertion over exactly this change; checked again as when asked.
    pub async fn confirm(
        &self,
        admin: &Admin<'_>,
        confirmation: &Confirmation,
    ) -> Result<Done, ApproverChangeError> {
        let nonce = URL_SAFE_NO_PAD
            .decode(&confirmation.assertion.nonce)
            .map_err(|_| ApproverChangeError::NotConfirmed("the nonce is not base64url"))?;
        let challenge = change_challenge(admin.id, &confirmation.change, &nonce);
        self.accounts
            .authorises(
                admin.id,
                &confirmation.credential_id,
                &confirmation.assertion,
                &challenge,
            )
            .await?
            .map_err(ApproverChangeError::NotConfirmed)?;
        let plan = self.plan(admin, &confirmation.change).await?;
        let kept = serde_json::to_string(confirmation).unwrap_or_default();
        let said = Said {
            action: plan.action,
            subject: &plan.subject,
            detail: plan.detail.as_deref(),
            authorisation: Some(&kept),
        };
        let (update, done) = match &plan.step {
            Step::Invite { row, token } => (
                ApproverUpdate::Invite(row),
                Done::Invited {
                    email: plan.subject.clone(),
                    token: token.clone(),
                },
            ),
            Step::SetRole { approver, role } => (
                ApproverUpdate::SetRole {
                    approver_id: approver,
                    role: role.as_str(),
                },
                Done::Changed,
            ),
            Step::Disable { approver } => (
                ApproverUpdate::Disable {
                    approver_id: approver,
                },
                Done::Changed,
            ),
            Step::Revoke {
                approver,
                credential,
            } => (
                ApproverUpdate::RevokePasskey {
                    approver_id: approver,
                    credential_id: credential,
                },
                Done::Changed,
            ),
        };
        if !super::change(&self.ciba, admin, update, said).await? {
            return Err(match plan.step {
                Step::Revoke { .. } => ApproverChangeError::NoSuchPasskey,
                _ => ApproverChangeError::NotFound,
            });
        }
        Ok(done)
    }

    /// The rules of each change, and what it will write.
    async fn plan(&self, admin: &Admin<'_>, change: &Change) -> Result<Plan, ApproverChangeError> {
        match change {
            Change::Invite {
                email,
                name,
                admin: as_admin,
            } => {
                let role = if *as_admin {
                    Role::Admin
                } else {
                    Role::Approver
                };
                // An invitation for someone new, or an approver who never had a passkey; valid 24 hours.
                let (token, row) = self
                    .invitations
                    .prepare(
                        email,
                        name.as_deref(),
                        role,
                        Some(admin.id),
                        self.ciba.now(),
                        invitations::INVITATION_TTL_MS,
                    )
                    .await?
                    .map_err(ApproverChangeError::Invalid)?;
                let email = row.email.clone().unwrap_or_default();
                Ok(Plan {
                    description: format!(
                        "Make an enrollment link for {email}, as {}",
                        match role {
                            Role::Admin => "an admin",
                            Role::Approver => "an approver",
                        }
                    ),
                    action: "invited an approver",
                    subject: email,
                    detail: Some(format!("as {}", role.as_str())),
                    step: Step::Invite { row, token },
                })
            }
            Change::Promote { approver } | Change::Demote { approver } => {
                let approver = self.approver(approver).await?;
                let role = if matches!(change, Change::Promote { .. }) {
                    Role::Admin
                } else {
                    Role::Approver
                };
                if approver.role == Role::Admin && role == Role::Approver && !approver.disabled {
                    self.keep_an_admin(&approver.id).await?;
                }
                let (action, description) = match role {
                    Role::Admin => (
                        "made an approver an admin",
                        format!("Make {} ({}) an admin", approver.name, approver.email),
                    ),
                    Role::Approver => (
                        "made an admin an approver only",
                        format!(
                            "Make {} ({}) an approver only",
                            approver.name, approver.email
                        ),
                    ),
                };
                Ok(Plan {
                    description,
                    action,
                    subject: approver.email,
                    detail: None,
                    step: Step::SetRole {
                        approver: approver.id,
                        role,
                    },
                })
            }
            Change::Disable { approver } => {
                // Offboarding: sessions end, pending requests and unredeemed approvals are withdrawn.
                let approver = self.approver(approver).await?;
                if approver.role == Role::Admin && !approver.disabled {
                    self.keep_an_admin(&approver.id).await?;
                }
                Ok(Plan {
                    description: format!("Disable {} ({}): their sessions end and their pending requests are withdrawn", approver.name, approver.email),
                    action: "disabled an approver",
                    subject: approver.email,
                    detail: None,
                    step: Step::Disable {
                        approver: approver.id,
                    },
                })
            }
            Change::RevokePasskey {
                approver,
                credential,
            } => {
                // A lost or copied passkey, even their last: its sessions end at their next request
                // and its unredeemed approvals are withdrawn. Someone with none left is recovered,
                // never invited again.
                let approver = self.approver(approver).await?;
                let Some(passkey) = self
                    .ciba
                    .store()
                    .passkey(credential)
                    .await?
                    .filter(|p| p.approver_id == approver.id)
                else {
                    return Err(ApproverChangeError::NoSuchPasskey);
                };
                Ok(Plan {
                    description: format!(
                        "Revoke {}'s passkey \u{201c}{}\u{201d}: it stops working at once",
                        approver.name, passkey.name
                    ),
                    action: "revoked a passkey",
                    subject: approver.email,
                    detail: Some(format!("{:?}", passkey.name)),
                    step: Step::Revoke {
                        approver: approver.id,
                        credential: passkey.credential_id,
                    },
                })
            }
        }
    }

    async fn approver(&self, id: &str) -> Result<Approver, ApproverChangeError> {
        approvers::by_id(self.ciba.store(), id)
            .await?
            .ok_or(ApproverChangeError::NotFound)
    }

    /// Refuses when `id` is the only active admin.
    async fn keep_an_admin(&self, id: &str) -> Result<(), ApproverChangeError> {
        let others = approvers::list(self.ciba.store())
            .await?
            .into_iter()
            .filter(|a| a.role == Role::Admin && !a.disabled && a.id != id)
            .count();
        if others == 0 {
            return Err(ApproverChangeError::LastAdmin);
        }
        Ok(())
    }
}
