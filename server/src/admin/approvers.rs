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
    secrets::random_id,
    store::{
        admin_log::ApproverUpdate, invitations::InvitationRow, passkeys::PasskeyRow,
        recoveries::RecoveryRow, StoreError,
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
    /// A recovery approved: its link's token (valid an hour), shown once, and whom it is for.
    Recovered {
        email: String,
        token: String,
    },
    Changed,
}

/// How long a started recovery waits for its second admin.
pub const RECOVERY_WAITS_MS: i64 = 24 * 60 * 60 * 1000;

/// Said when no second admin could approve a recovery.
fn operator_recovery(email: &str) -> String {
    format!("A recovery needs a second admin to approve it, and there is none who can. Someone with access to the server runs `countersign approver recover --email {email}` instead.")
}

/// A recovery waiting for its second admin, as the approvers page lists it.
pub struct OpenRecovery {
    pub id: String,
    pub approver: Approver,
    pub started_by: String,
    pub started_at: i64,
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
    StartRecovery(RecoveryRow),
    /// A group or an approval policy (`admin::groups`).
    Groups(super::groups::GroupStep),
    ApproveRecovery {
        recovery: RecoveryRow,
        link: InvitationRow,
        token: String,
    },
    CancelRecovery(RecoveryRow),
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
            Step::StartRecovery(row) => (ApproverUpdate::StartRecovery(row), Done::Changed),
            Step::Groups(step) => (step.update(self.ciba.now()), Done::Changed),
            Step::CancelRecovery(recovery) => (
                ApproverUpdate::CancelRecovery {
                    recovery,
                    cancelled_by: admin.id,
                    at: self.ciba.now(),
                },
                Done::Changed,
            ),
            Step::ApproveRecovery {
                recovery,
                link,
                token,
            } => (
                ApproverUpdate::ApproveRecovery {
                    recovery,
                    approved_by: admin.id,
                    at: self.ciba.now(),
                    link,
                },
                Done::Recovered {
                    email: plan.subject.clone(),
                    token: token.clone(),
                },
            ),
        };
        if !super::change(&self.ciba, admin, update, said).await? {
            return Err(match plan.step {
                Step::Groups(step) => ApproverChangeError::Invalid(step.nothing_changed().into()),
                Step::Revoke { .. } => ApproverChangeError::NoSuchPasskey,
                Step::ApproveRecovery { .. } | Step::CancelRecovery(_) => {
                    ApproverChangeError::Invalid(
                        "This recovery has been approved or cancelled already.".into(),
                    )
                }
                _ => ApproverChangeError::NotFound,
            });
        }
        if let Step::Groups(step) = &plan.step {
            // In force here at once; other instances read it within a second.
            if step.changes_policies() {
                self.ciba.policies().refresh(self.ciba.store()).await?;
            }
            if step.changes_delegations() {
                self.ciba
                    .delegations()
                    .refresh(self.ciba.store(), self.ciba.now())
                    .await?;
            }
        }
        if let Step::CancelRecovery(recovery) = &plan.step {
            self.accounts
                .tell(
                    &recovery.approver_id,
                    "The recovery of your Countersign account was cancelled".into(),
                    format!("{} cancelled the recovery of your account that {} started. Your passkeys are unchanged. If you did not ask to be recovered, tell your admins: someone may have tried to take over your account.", admin.email, self.starter(recovery).await?),
                )
                .await?;
        }
        if let Step::ApproveRecovery { recovery, .. } = &plan.step {
            self.accounts
                .tell(
                    &recovery.approver_id,
                    "Your Countersign account is being recovered".into(),
                    format!("Two admins approved recovering your account ({} approved it). Your earlier passkeys no longer work; the one-time link your admin gives you, valid for an hour, enrolls a new one. If you did not ask for this, tell your admins at once.", admin.email),
                )
                .await?;
        }
        Ok(done)
    }

    /// Recoveries waiting for their second admin.
    pub async fn open_recoveries(&self) -> Result<Vec<OpenRecovery>, StoreError> {
        let store = self.ciba.store();
        let mut open = Vec::new();
        for row in store
            .open_recoveries(self.ciba.now() - RECOVERY_WAITS_MS)
            .await?
        {
            let Some(approver) = approvers::by_id(store, &row.approver_id).await? else {
                continue;
            };
            open.push(OpenRecovery {
                started_by: self.starter(&row).await?,
                id: row.id,
                approver,
                started_at: row.started_at,
            });
        }
        Ok(open)
    }

    /// Who started `recovery`, by e-mail.
    async fn starter(&self, recovery: &RecoveryRow) -> Result<String, StoreError> {
        Ok(match &recovery.started_by {
            Some(id) => approvers::by_id(self.ciba.store(), id)
                .await?
                .map_or_else(|| id.clone(), |a| a.email),
            None => "the operator".into(),
        })
    }

    /// The rules of each change, and what it will write.
    async fn plan(&self, admin: &Admin<'_>, change: &Change) -> Result<Plan, ApproverChangeError> {
        let (store, now) = (self.ciba.store(), self.ciba.now());
        if let Some(p) = super::groups::plan(store, now, admin.id, change).await? {
            return Ok(Plan {
                description: p.description,
                action: p.action,
                subject: p.subject,
                detail: p.detail,
                step: Step::Groups(p.step),
            });
        }
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
            Change::StartRecovery { approver } => self.plan_start_recovery(admin, approver).await,
            Change::ApproveRecovery { recovery } => {
                self.plan_approve_recovery(admin, recovery).await
            }
            Change::CancelRecovery { recovery } => self.plan_cancel_recovery(recovery).await,
            Change::CreateGroup { .. }
            | Change::AddToGroup { .. }
            | Change::RemoveFromGroup { .. }
            | Change::AllowGroup { .. }
            | Change::DisallowGroup { .. }
            | Change::SetPolicy { .. }
            | Change::RetirePolicy { .. }
            | Change::Delegate { .. }
            | Change::EndDelegation { .. } => unreachable!("planned by admin::groups"),
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

    /// Starting a recovery: for an active approver other than the admin, none open yet, and with a
    /// second admin (other than this one and the person recovered) who has a passkey to approve it.
    async fn plan_start_recovery(
        &self,
        admin: &Admin<'_>,
        id: &str,
    ) -> Result<Plan, ApproverChangeError> {
        let approver = self.approver(id).await?;
        let refuse = |why: String| Err(ApproverChangeError::Invalid(why));
        if approver.disabled {
            return refuse(format!("{} is disabled.", approver.email));
        }
        if approver.id == admin.id {
            return refuse(
                "You cannot recover yourself: another admin starts your recovery.".into(),
            );
        }
        let store = self.ciba.store();
        let since = self.ciba.now() - RECOVERY_WAITS_MS;
        if store
            .open_recoveries(since)
            .await?
            .iter()
            .any(|r| r.approver_id == approver.id)
        {
            return refuse(format!(
                "A recovery of {} is already waiting for a second admin.",
                approver.email
            ));
        }
        let mut second = false;
        for other in approvers::list(store).await? {
            if other.role == Role::Admin
                && !other.disabled
                && other.id != admin.id
                && other.id != approver.id
                && !self.accounts.passkeys(&other.id).await?.is_empty()
            {
                second = true;
                break;
            }
        }
        if !second {
            return refuse(operator_recovery(&approver.email));
        }
        let row = RecoveryRow {
            id: random_id(),
            approver_id: approver.id.clone(),
            started_by: Some(admin.id.to_owned()),
            started_at: self.ciba.now(),
            approved_by: None,
            approved_at: None,
            cancelled_by: None,
            cancelled_at: None,
        };
        Ok(Plan {
            description: format!("Start recovering {} ({}): once a second admin approves, their passkeys stop working and they get a one-time link to enroll a new one", approver.name, approver.email),
            action: "started a recovery",
            subject: approver.email,
            detail: Some(row.id.clone()),
            step: Step::StartRecovery(row),
        })
    }

    /// Approving a recovery: open, not lapsed, and approved by an admin who neither started it nor
    /// is the person recovered.
    async fn plan_approve_recovery(
        &self,
        admin: &Admin<'_>,
        id: &str,
    ) -> Result<Plan, ApproverChangeError> {
        let Some(recovery) = self.ciba.store().recovery(id).await? else {
            return Err(ApproverChangeError::NotFound);
        };
        let refuse = |why: &str| Err(ApproverChangeError::Invalid(why.into()));
        if recovery.approved_at.is_some() {
            return refuse("This recovery has been approved already.");
        }
        if recovery.started_at <= self.ciba.now() - RECOVERY_WAITS_MS {
            return refuse("This recovery waited more than a day and has lapsed: start it again.");
        }
        if recovery.started_by.as_deref() == Some(admin.id) {
            return refuse("You started this recovery: a second admin approves it.");
        }
        if recovery.approver_id == admin.id {
            return refuse("You cannot approve your own recovery.");
        }
        let approver = self.approver(&recovery.approver_id).await?;
        if approver.disabled {
            return refuse("The person to recover is disabled.");
        }
        let starter = self.starter(&recovery).await?;
        let (token, link) = self.invitations.recovery_link(
            &approver,
            &recovery.id,
            Some(admin.id),
            self.ciba.now(),
        );
        Ok(Plan {
            description: format!("Approve recovering {} ({}), started by {starter}: their passkeys stop working now, and you get a one-time link, valid for an hour, for them to enroll a new one", approver.name, approver.email),
            action: "approved a recovery",
            subject: approver.email,
            detail: Some(format!("{}, started by {starter}", recovery.id)),
            step: Step::ApproveRecovery {
                recovery,
                link,
                token,
            },
        })
    }

    /// Cancelling a recovery: any admin, while it is open (neither approved nor cancelled). The
    /// second admin declines one this way; the first takes theirs back.
    async fn plan_cancel_recovery(&self, id: &str) -> Result<Plan, ApproverChangeError> {
        let Some(recovery) = self.ciba.store().recovery(id).await? else {
            return Err(ApproverChangeError::NotFound);
        };
        let refuse = |why: &str| Err(ApproverChangeError::Invalid(why.into()));
        if recovery.approved_at.is_some() {
            return refuse("This recovery has been approved already: revoke the passkey its link enrolled instead.");
        }
        if recovery.cancelled_at.is_some() {
            return refuse("This recovery has been cancelled already.");
        }
        let approver = self.approver(&recovery.approver_id).await?;
        let starter = self.starter(&recovery).await?;
        Ok(Plan {
            description: format!("Cancel recovering {} ({}), started by {starter}: it can then never be approved, and their passkeys stay as they are", approver.name, approver.email),
            action: "cancelled a recovery",
            subject: approver.email,
            detail: Some(format!("{}, started by {starter}", recovery.id)),
            step: Step::CancelRecovery(recovery),
        })
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

/// The operator's recovery (`countersign approver recover`), for when there is no second admin:
/// whoever runs it has the server, so it is started and approved at once. The approver's passkeys
/// and sessions end, the link's token (valid an hour) is returned, and the admin log says so, all
/// in one transaction.
pub async fn recover_as_operator(
    store: &crate::store::Store,
    invitations: &Invitations,
    email: &str,
    now: i64,
) -> Result<Result<String, String>, StoreError> {
    let Some(approver) = approvers::by_email(store, email).await? else {
        return Ok(Err(format!("there is no approver {email:?}")));
    };
    if approver.disabled {
        return Ok(Err(format!("{} is disabled", approver.email)));
    }
    let recovery = RecoveryRow {
        id: random_id(),
        approver_id: approver.id.clone(),
        started_by: None,
        started_at: now,
        approved_by: None,
        approved_at: None,
        cancelled_by: None,
        cancelled_at: None,
    };
    let (token, link) = invitations.recovery_link(&approver, &recovery.id, None, now);
    let entry = crate::store::admin_log::AdminEntry {
        at: now,
        admin_id: OPERATOR,
        admin_email: "the operator (countersign approver recover)",
        action: "recovered an approver",
        subject: &approver.email,
        detail: Some(&recovery.id),
        authorisation: None,
    };
    let update = ApproverUpdate::OperatorRecovery {
        recovery: &recovery,
        link: &link,
    };
    store
        .admin_change(update, &entry, super::log::entry_hash)
        .await?;
    Ok(Ok(token))
}

/// The admin log's name for the operator, who acts on the server's command line.
pub const OPERATOR: &str = "operator";
