//! The identity service behind the UI's server functions: enrollment, sign-in, sessions and passkey
//! management. Ceremony state lives in the (database-backed) session between a start and its finish,
//! and is taken out on finish, so each challenge is used at most once.
use std::sync::Arc;

use app::{
    model::{InvitationView, Me, PasskeyView},
    service::{IdentityService, Session, UserResult},
};
use async_trait::async_trait;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use uuid::Uuid;
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse,
};

use super::{
    approvers::{self, normalise_email, Approver, Role},
    invitations,
    passkeys::{public_key_json, AssertionError, Passkeys},
};
use crate::{
    clock::{Clock, Millis},
    secrets::{base64url, hash_secret, random_id},
    store::{approvers::ApproverRow, identity::PasskeyRow, Store},
};

const SIGNED_IN: &str = "signed_in";
const ENROLLMENT: &str = "enrollment";
const ADDITION: &str = "passkey_addition";
const SIGN_IN: &str = "sign_in";

#[derive(Serialize, Deserialize)]
struct SignedInUser {
    approver_id: String,
    epoch: i64,
    since: Millis,
}

#[derive(Serialize, Deserialize)]
struct PendingEnrollment {
    token_hash: String,
    approver_id: String,
    email: String,
    name: String,
    role: String,
    create: bool,
    state: PasskeyRegistration,
}

pub struct IdentityApp {
    store: Store,
    clock: Arc<dyn Clock>,
    passkeys: Passkeys,
    /// Absolute session lifetime: a session older than this is ended whatever its activity.
    max_session_ms: Millis,
}

/// Logs the detail, returns the sentence for the person.
pub(crate) fn internal(e: impl std::fmt::Display) -> String {
    tracing::error!(error = %e, "identity service error");
    "Something went wrong on our side. Please try again.".into()
}

pub(crate) async fn take<T: DeserializeOwned>(
    session: &Session,
    key: &str,
) -> UserResult<Option<T>> {
    session.remove::<T>(key).await.map_err(internal)
}

async fn put<T: Serialize>(session: &Session, key: &str, value: T) -> UserResult<()> {
    session.insert(key, value).await.map_err(internal)
}

fn user_uuid(approver_id: &str) -> UserResult<Uuid> {
    Uuid::parse_str(approver_id).map_err(internal)
}

fn me(approver: &Approver) -> Me {
    Me {
        name: approver.name.clone(),
        email: approver.email.clone(),
        admin: approver.role == Role::Admin,
    }
}

fn passkey_label(name: &str) -> UserResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
        return Err("Give the passkey a name of 1 to 60 characters.".into());
    }
    Ok(name.to_owned())
}

impl IdentityApp {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        passkeys: Passkeys,
        max_session_ms: Millis,
    ) -> IdentityApp {
        IdentityApp {
            store,
            clock,
            passkeys,
            max_session_ms,
        }
    }

    /// The signed-in approver, if the session is still valid (epoch and absolute lifetime).
    pub(crate) async fn signed_in(&self, session: &Session) -> UserResult<Option<Approver>> {
        let Some(user) = session
            .get::<SignedInUser>(SIGNED_IN)
            .await
            .map_err(internal)?
        else {
            return Ok(None);
        };
        let epoch = self
            .store
            .session_epoch(&user.approver_id)
            .await
            .map_err(internal)?;
        let fresh = self.clock.now() - user.since < self.max_session_ms;
        if epoch != Some(user.epoch) || !fresh {
            session.flush().await.map_err(internal)?;
            return Ok(None);
        }
        approvers::by_id(&self.store, &user.approver_id)
            .await
            .map_err(internal)
    }

    pub(crate) async fn require(&self, session: &Session) -> UserResult<Approver> {
        self.signed_in(session)
            .await?
            .ok_or_else(|| "Your session has ended. Please sign in again.".to_owned())
    }

    pub(crate) fn passkeys(&self) -> &Passkeys {
        &self.passkeys
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn now(&self) -> Millis {
        self.clock.now()
    }

    /// The approver's passkeys that may still sign (not suspended).
    pub(crate) async fn usable_passkeys(&self, approver_id: &str) -> UserResult<Vec<Passkey>> {
        let rows = self
            .store
            .passkeys_of(approver_id)
            .await
            .map_err(internal)?;
        Ok(rows
            .iter()
            .filter(|r| r.suspended_at.is_none())
            .filter_map(|r| serde_json::from_str(&r.passkey).ok())
            .collect())
    }

    /// One of the approver's passkeys by credential id, refusing suspended ones.
    pub(crate) async fn passkey_of(
        &self,
        approver_id: &str,
        credential_id: &str,
    ) -> UserResult<(Passkey, PasskeyRow)> {
        let row = self
            .store
            .passkey(credential_id)
            .await
            .map_err(internal)?
            .filter(|r| r.approver_id == approver_id)
            .ok_or("This passkey is not one of yours.")?;
        if row.suspended_at.is_some() {
            return Err("This passkey is suspended; use another one.".into());
        }
        Ok((serde_json::from_str(&row.passkey).map_err(internal)?, row))
    }

    pub(crate) async fn record_use(
        &self,
        credential_id: &str,
        passkey: &Passkey,
        backed_up: bool,
        now: Millis,
    ) -> UserResult<()> {
        let stored = serde_json::to_string(passkey).map_err(internal)?;
        self.store
            .record_passkey_use(credential_id, &stored, backed_up, now)
            .await
            .map_err(internal)
    }

    /// Suspends a passkey whose signature counter went backwards (a possible clone) and returns the
    /// message for the person.
    pub(crate) async fn suspend(&self, credential_id: &str, now: Millis) -> String {
        tracing::warn!(
            credential_id,
            "signature counter went backwards; passkey suspended"
        );
        if let Err(e) = self
            .store
            .suspend_passkey(credential_id, "signature counter went backwards", now)
            .await
        {
            return internal(e);
        }
        "This passkey has been suspended: its signature counter went backwards, which can mean it was copied. \
         An admin has been told; use another passkey."
            .into()
    }

    /// A new session id at sign-in (no fixation), bound to the approver's current epoch.
    async fn begin_session(&self, session: &Session, approver: &Approver) -> UserResult<()> {
        let epoch = self
            .store
            .session_epoch(&approver.id)
            .await
            .map_err(internal)?
            .ok_or("This account is disabled.")?;
        session.cycle_id().await.map_err(internal)?;
        put(
            session,
            SIGNED_IN,
            SignedInUser {
                approver_id: approver.id.clone(),
                epoch,
                since: self.clock.now(),
            },
        )
        .await
    }

    fn passkey_row(
        &self,
        approver_id: &str,
        name: String,
        passkey: &Passkey,
    ) -> UserResult<PasskeyRow> {
        Ok(PasskeyRow {
            credential_id: base64url(passkey.cred_id().as_ref()),
            approver_id: approver_id.to_owned(),
            name,
            passkey: serde_json::to_string(passkey).map_err(internal)?,
            backup_state: 0,
            created_at: self.clock.now(),
            last_used_at: None,
            suspended_at: None,
            suspended_reason: None,
        })
    }
}

#[async_trait]
impl IdentityService for IdentityApp {
    async fn current_user(&self, session: &Session) -> UserResult<Option<Me>> {
        Ok(self.signed_in(session).await?.as_ref().map(me))
    }

    async fn invitation(&self, token: &str) -> UserResult<InvitationView> {
        let row = self
            .store
            .invitation(&hash_secret(token))
            .await
            .map_err(internal)?;
        invitations::check(row.as_ref(), self.clock.now())?;
        let row = row.expect("checked above");
        Ok(InvitationView {
            email: row.email,
            name: row.name,
            admin: row.role == "admin",
        })
    }

    async fn start_enrollment(
        &self,
        session: &Session,
        token: &str,
        name: Option<String>,
        email: Option<String>,
    ) -> UserResult<CreationChallengeResponse> {
        let token_hash = hash_secret(token);
        let row = self.store.invitation(&token_hash).await.map_err(internal)?;
        invitations::check(row.as_ref(), self.clock.now())?;
        let row = row.expect("checked above");
        let email = match (&row.email, email) {
            (Some(invited), _) => invited.clone(),
            (None, Some(given)) => normalise_email(&given),
            (None, None) => return Err("Enter your email.".into()),
        };
        let existing = approvers::by_email(&self.store, &email)
            .await
            .map_err(internal)?;
        let (approver_id, name, create) = match existing {
            Some(a) => (a.id, a.name, false),
            None => {
                let name = row
                    .name
                    .clone()
                    .or(name)
                    .map(|n| n.trim().to_owned())
                    .unwrap_or_default();
                approvers::validate_new(&email, &name)?;
                (random_id(), name, true)
            }
        };
        let (options, state) = self
            .passkeys
            .start_registration(user_uuid(&approver_id)?, &email, &name, Vec::new())
            .map_err(internal)?;
        let pending = PendingEnrollment {
            token_hash,
            approver_id,
            email,
            name,
            role: row.role,
            create,
            state,
        };
        put(session, ENROLLMENT, pending).await?;
        Ok(options)
    }

    async fn finish_enrollment(
        &self,
        session: &Session,
        credential: RegisterPublicKeyCredential,
        passkey_name: String,
    ) -> UserResult<Me> {
        let label = passkey_label(&passkey_name)?;
        let pending: PendingEnrollment = take(session, ENROLLMENT)
            .await?
            .ok_or("Start the enrollment again from your invitation link.")?;
        let passkey = self
            .passkeys
            .finish_registration(&credential, &pending.state)
            .map_err(|e| {
                tracing::warn!(error = %e, "passkey registration refused");
                "Your passkey could not be registered. Please try again.".to_owned()
            })?;
        let now = self.clock.now();
        let approver = ApproverRow {
            id: pending.approver_id.clone(),
            email: pending.email.clone(),
            name: pending.name.clone(),
            role: pending.role.clone(),
            user_code_hash: None,
            disabled: 0,
            created_at: now,
        };
        let row = self.passkey_row(&pending.approver_id, label, &passkey)?;
        let key = public_key_json(&passkey).map_err(internal)?;
        if !self
            .store
            .enroll(
                &pending.token_hash,
                now,
                &approver,
                pending.create,
                &row,
                &key,
            )
            .await
            .map_err(internal)?
        {
            return Err(
                "This invitation has already been used or has expired. Ask an admin for a new one."
                    .into(),
            );
        }
        let approver = approvers::by_id(&self.store, &pending.approver_id)
            .await
            .map_err(internal)?
            .ok_or("Enrollment failed.")?;
        tracing::info!(approver_id = %approver.id, "passkey enrolled");
        self.begin_session(session, &approver).await?;
        Ok(me(&approver))
    }

    async fn start_sign_in(
        &self,
        session: &Session,
        autofill: bool,
    ) -> UserResult<RequestChallengeResponse> {
        let (options, state) = self.passkeys.start_sign_in(autofill).map_err(internal)?;
        put(session, SIGN_IN, state).await?;
        Ok(options)
    }

    async fn finish_sign_in(
        &self,
        session: &Session,
        credential: PublicKeyCredential,
    ) -> UserResult<Me> {
        let state: DiscoverableAuthentication = take(session, SIGN_IN)
            .await?
            .ok_or("The sign-in took too long or was already used. Please try again.")?;
        let unknown = || {
            "This passkey is not registered with Countersign. Use another passkey, or ask an admin for an invitation.".to_owned()
        };
        let (user, credential_id) = self.passkeys.identify(&credential).map_err(|_| unknown())?;
        let credential_id = base64url(credential_id);
        let row = self
            .store
            .passkey(&credential_id)
            .await
            .map_err(internal)?
            .ok_or_else(unknown)?;
        if user_uuid(&row.approver_id)? != user {
            return Err(unknown());
        }
        if row.suspended_at.is_some() {
            return Err("This passkey is suspended because its signature counter went backwards, which can mean it was copied. An admin has been told; use another passkey.".into());
        }
        let mut passkey: Passkey = serde_json::from_str(&row.passkey).map_err(internal)?;
        let now = self.clock.now();
        match self
            .passkeys
            .finish_sign_in(&credential, state, &mut passkey)
        {
            Ok(backed_up) => {
                self.record_use(&credential_id, &passkey, backed_up, now)
                    .await?
            }
            Err(AssertionError::PossibleClone) => {
                return Err(self.suspend(&credential_id, now).await)
            }
            Err(AssertionError::Invalid(e)) => {
                tracing::warn!(error = %e, "passkey assertion refused");
                return Err("Your passkey could not be verified. Please try again.".into());
            }
        }
        let approver = approvers::by_id(&self.store, &row.approver_id)
            .await
            .map_err(internal)?
            .filter(|a| !a.disabled)
            .ok_or("This account is disabled.")?;
        self.begin_session(session, &approver).await?;
        tracing::info!(approver_id = %approver.id, "signed in");
        Ok(me(&approver))
    }

    async fn sign_out(&self, session: &Session, everywhere: bool) -> UserResult<()> {
        if everywhere {
            if let Some(approver) = self.signed_in(session).await? {
                self.store
                    .bump_session_epoch(&approver.id)
                    .await
                    .map_err(internal)?;
            }
        }
        session.flush().await.map_err(internal)
    }

    async fn passkeys(&self, session: &Session) -> UserResult<Vec<PasskeyView>> {
        let approver = self.require(session).await?;
        let rows = self
            .store
            .passkeys_of(&approver.id)
            .await
            .map_err(internal)?;
        Ok(rows
            .into_iter()
            .map(|r| PasskeyView {
                id: r.credential_id,
                name: r.name,
                created_at: r.created_at,
                last_used_at: r.last_used_at,
                synced: r.backup_state != 0,
                suspended: r.suspended_at.is_some(),
            })
            .collect())
    }

    async fn start_add_passkey(&self, session: &Session) -> UserResult<CreationChallengeResponse> {
        let approver = self.require(session).await?;
        let existing = self
            .store
            .passkeys_of(&approver.id)
            .await
            .map_err(internal)?
            .iter()
            .filter_map(|r| serde_json::from_str::<Passkey>(&r.passkey).ok())
            .map(|p| p.cred_id().clone())
            .collect();
        let (options, state) = self
            .passkeys
            .start_registration(
                user_uuid(&approver.id)?,
                &approver.email,
                &approver.name,
                existing,
            )
            .map_err(internal)?;
        put(session, ADDITION, state).await?;
        Ok(options)
    }

    async fn finish_add_passkey(
        &self,
        session: &Session,
        credential: RegisterPublicKeyCredential,
        name: String,
    ) -> UserResult<()> {
        let approver = self.require(session).await?;
        let label = passkey_label(&name)?;
        let state: PasskeyRegistration = take(session, ADDITION)
            .await?
            .ok_or("Start adding the passkey again.")?;
        let passkey = self
            .passkeys
            .finish_registration(&credential, &state)
            .map_err(|e| {
                tracing::warn!(error = %e, "passkey registration refused");
                "The passkey could not be registered. Please try again.".to_owned()
            })?;
        let row = self.passkey_row(&approver.id, label, &passkey)?;
        let key = public_key_json(&passkey).map_err(internal)?;
        self.store
            .insert_passkey(&row, &key)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict(_) => {
                    "This passkey is already registered.".to_owned()
                }
                other => internal(other),
            })
    }

    async fn rename_passkey(&self, session: &Session, id: String, name: String) -> UserResult<()> {
        let approver = self.require(session).await?;
        let label = passkey_label(&name)?;
        if !self
            .store
            .rename_passkey(&approver.id, &id, &label)
            .await
            .map_err(internal)?
        {
            return Err("No such passkey.".into());
        }
        Ok(())
    }

    async fn remove_passkey(&self, session: &Session, id: String) -> UserResult<()> {
        let approver = self.require(session).await?;
        if !self
            .store
            .remove_passkey(&approver.id, &id)
            .await
            .map_err(internal)?
        {
            return Err("Your last passkey cannot be removed: you would be locked out. Add another one first.".into());
        }
        Ok(())
    }
}
