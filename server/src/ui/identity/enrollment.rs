//! Enrolling with an invitation link: the person's first passkey, and their account with it.
use serde::{Deserialize, Serialize};

use app::{
    model::{InvitationView, Me},
    service::{CeremonyState, EnrollmentService, Session, UiError, UserResult},
};
use async_trait::async_trait;
use webauthn_rs::prelude::{
    CreationChallengeResponse, PasskeyRegistration, RegisterPublicKeyCredential,
};

use super::*;
use crate::identity::{
    accounts::{Enrolling, Enrollment, NewAccount, NewPasskey},
    ceremonies::Kind,
    provenance::Provenance,
};

#[derive(Serialize, Deserialize)]
struct PendingEnrollment {
    token_hash: String,
    approver_id: String,
    email: String,
    name: String,
    admin: bool,
    create: bool,
    state: PasskeyRegistration,
    /// The invitation's public id and issuer, for the key's provenance.
    #[serde(default)]
    invitation_id: Option<String>,
    #[serde(default)]
    issued_by: Option<String>,
    /// The recovery whose link this is.
    #[serde(default)]
    recovery: Option<String>,
}

#[async_trait]
impl EnrollmentService for IdentityApp {
    async fn invitation(&self, token: &str) -> UserResult<InvitationView> {
        let (invitation, _) = self.accounts.invitation(token).await.map_err(internal)?;
        invitations::check(invitation.as_ref(), self.clock.now()).map_err(UiError::NotFound)?;
        let invitation = invitation.expect("checked above");
        self.accounts
            .check_open_invitation(&invitation)
            .await
            .map_err(internal)?
            .map_err(UiError::Forbidden)?;
        if let Some(email) = invitation.email() {
            self.accounts
                .check_person(&invitation, email)
                .await
                .map_err(internal)?
                .map_err(UiError::Forbidden)?;
        }
        Ok(InvitationView {
            email: invitation.email().map(str::to_owned),
            name: invitation.name().map(str::to_owned),
            admin: invitation.role() == Role::Admin,
            recovery: invitation.recovery().is_some(),
        })
    }

    async fn start_enrollment(
        &self,
        token: &str,
        name: Option<String>,
        email: Option<String>,
    ) -> UserResult<(CreationChallengeResponse, CeremonyState)> {
        let (invitation, token_hash) = self.accounts.invitation(token).await.map_err(internal)?;
        invitations::check(invitation.as_ref(), self.clock.now()).map_err(UiError::NotFound)?;
        let invitation = invitation.expect("checked above");
        self.accounts
            .check_open_invitation(&invitation)
            .await
            .map_err(internal)?
            .map_err(UiError::Forbidden)?;
        let email = match (invitation.email(), email) {
            (Some(invited), _) => invited.to_owned(),
            (None, Some(given)) => normalise_email(&given),
            (None, None) => return Err(UiError::Invalid("Enter your email.".into())),
        };
        self.accounts
            .check_person(&invitation, &email)
            .await
            .map_err(internal)?
            .map_err(UiError::Forbidden)?;
        let existing = self
            .accounts
            .approver_by_email(&email)
            .await
            .map_err(internal)?;
        let (approver_id, name, create) = match existing {
            Some(a) => (a.id, a.name, false),
            None => {
                let name = invitation
                    .name()
                    .map(str::to_owned)
                    .or(name)
                    .map(|n| n.trim().to_owned())
                    .unwrap_or_default();
                approvers::validate_new(&email, &name).map_err(UiError::Invalid)?;
                (random_id(), name, true)
            }
        };
        let (options, state) = self
            .webauthn
            .start_registration(user_uuid(&approver_id)?, &email, &name, Vec::new())
            .map_err(internal)?;
        let pending = PendingEnrollment {
            token_hash,
            approver_id,
            email,
            name,
            admin: invitation.role() == Role::Admin,
            create,
            state,
            invitation_id: invitation.id().map(str::to_owned),
            issued_by: invitation.issued_by().map(str::to_owned),
            recovery: invitation.recovery().map(str::to_owned),
        };
        let sealed = self
            .ceremonies
            .seal(Kind::Enrollment, pending, self.clock.now());
        Ok((options, CeremonyState(sealed)))
    }

    async fn finish_enrollment(
        &self,
        session: &Session,
        state: Option<CeremonyState>,
        credential: RegisterPublicKeyCredential,
        passkey_name: String,
    ) -> UserResult<Me> {
        let label = passkey_label(&passkey_name)?;
        let again =
            || UiError::Conflict("Start the enrollment again from your invitation link.".into());
        let now = self.clock.now();
        let (pending, ticket) = self
            .ceremonies
            .open::<PendingEnrollment>(Kind::Enrollment, state.as_ref().map(|s| s.0.as_str()), now)
            .map_err(|e| {
                tracing::info!(reason = %e, "an enrollment's state was refused");
                again()
            })?;
        let passkey = self
            .webauthn
            .finish_registration(&credential, &pending.state)
            .map_err(|e| {
                tracing::warn!(error = %e, "passkey registration refused");
                UiError::Invalid("Your passkey could not be registered. Please try again.".into())
            })?;
        // Registered: only now is anything written, starting with the state's one use.
        self.ceremonies
            .spend(ticket, now)
            .await
            .map_err(internal)?
            .map_err(|_| again())?;
        let approver = NewAccount {
            id: pending.approver_id.clone(),
            email: pending.email.clone(),
            name: pending.name.clone(),
            role: if pending.admin {
                Role::Admin
            } else {
                Role::Approver
            },
        };
        let new = NewPasskey {
            approver_id: pending.approver_id.clone(),
            name: label,
            key: passkey,
        };
        let invitation = pending
            .invitation_id
            .unwrap_or_else(|| "made before invitations had ids".into());
        let provenance = match &pending.recovery {
            None => Provenance::Invitation {
                invitation,
                issued_by: pending.issued_by,
            },
            Some(id) => {
                let recovery = self
                    .accounts
                    .recovery(id)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| internal("the invitation's recovery is missing"))?;
                Provenance::Recovery {
                    invitation,
                    recovery: recovery.id,
                    started_by: recovery.started_by,
                    approved_by: recovery.approved_by,
                }
            }
        };
        match self
            .accounts
            .enroll(
                Enrolling {
                    token_hash: &pending.token_hash,
                    approver: &approver,
                    create: pending.create,
                    passkey: &new,
                    provenance: &provenance,
                },
                now,
            )
            .await
            .map_err(internal)?
        {
            Enrollment::Enrolled => {}
            Enrollment::InvitationSpent => return Err(UiError::Conflict(
                "This invitation has already been used or has expired. Ask an admin for a new one."
                    .into(),
            )),
            Enrollment::HasPasskey => {
                return Err(UiError::Forbidden(invitations::already_enrolled(
                    &pending.email,
                )))
            }
        }
        let approver = self
            .accounts
            .approver(&pending.approver_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| internal("the enrolled approver is missing"))?;
        tracing::info!(approver_id = %approver.id, "passkey enrolled");
        self.begin_session(session, &approver, &new.credential_id())
            .await?;
        Ok(me(&approver))
    }
}
