//! Approvers as admins keep them: inviting one (a one-time enrollment link, shown once), disabling
//! one (the offboarding `approver disable` does), revoking a passkey, and promoting to admin or
//! demoting. The last active
//! admin can be neither demoted nor disabled: someone must be able to run the console. Every change
//! is appended to the admin log.
use std::{collections::HashMap, sync::Arc};

use super::Admin;
use crate::{
    ciba::Ciba,
    identity::{
        approvers::{self, Approver, Role},
        invitations::{self, Invitations},
    },
    store::{passkeys::PasskeyRow, StoreError},
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
}

impl Approvers {
    pub fn new(ciba: Arc<Ciba>, invitations: Invitations) -> Approvers {
        Approvers { ciba, invitations }
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

    /// Revokes one of approver `id`'s passkeys (lost or copied), even their last: sessions made
    /// with it end at their next request, and someone with no passkey left needs a new invitation.
    pub async fn revoke_passkey(
        &self,
        admin: &Admin<'_>,
        id: &str,
        credential_id: &str,
    ) -> Result<(), ApproverChangeError> {
        let approver = self.approver(id).await?;
        let store = self.ciba.store();
        let Some(passkey) = store
            .passkey(credential_id)
            .await?
            .filter(|p| p.approver_id == approver.id)
        else {
            return Err(ApproverChangeError::NoSuchPasskey);
        };
        if !store.revoke_passkey(&approver.id, credential_id).await? {
            return Err(ApproverChangeError::NoSuchPasskey);
        }
        let detail = format!("{:?}", passkey.name);
        super::record(
            &self.ciba,
            admin,
            "revoked a passkey",
            &approver.email,
            Some(&detail),
        )
        .await?;
        Ok(())
    }

    /// A one-time enrollment link's token for `email` (valid 24 hours): someone new, or an approver
    /// without a passkey yet.
    pub async fn invite(
        &self,
        admin: &Admin<'_>,
        email: &str,
        name: Option<&str>,
        role: Role,
    ) -> Result<String, ApproverChangeError> {
        let token = self
            .invitations
            .invite(
                email,
                name,
                role,
                Some(admin.id),
                self.ciba.now(),
                invitations::INVITATION_TTL_MS,
            )
            .await?
            .map_err(ApproverChangeError::Invalid)?;
        let email = approvers::normalise_email(email);
        let detail = format!("as {}", role.as_str());
        super::record(
            &self.ciba,
            admin,
            "invited an approver",
            &email,
            Some(&detail),
        )
        .await?;
        Ok(token)
    }

    /// Offboards approver `id`: sessions end, pending requests and unredeemed approvals are withdrawn.
    pub async fn disable(&self, admin: &Admin<'_>, id: &str) -> Result<(), ApproverChangeError> {
        let approver = self.approver(id).await?;
        if approver.role == Role::Admin && !approver.disabled {
            self.keep_an_admin(id).await?;
        }
        approvers::disable(self.ciba.store(), &approver.email, self.ciba.now()).await?;
        super::record(
            &self.ciba,
            admin,
            "disabled an approver",
            &approver.email,
            None,
        )
        .await?;
        Ok(())
    }

    pub async fn set_role(
        &self,
        admin: &Admin<'_>,
        id: &str,
        role: Role,
    ) -> Result<(), ApproverChangeError> {
        let approver = self.approver(id).await?;
        if approver.role == role {
            return Ok(());
        }
        if approver.role == Role::Admin && !approver.disabled {
            self.keep_an_admin(id).await?;
        }
        self.ciba
            .store()
            .set_approver_role(id, role.as_str())
            .await?;
        let action = match role {
            Role::Admin => "made an approver an admin",
            Role::Approver => "made an admin an approver only",
        };
        super::record(&self.ciba, admin, action, &approver.email, None).await?;
        Ok(())
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
