//! The identity service behind the UI's server functions: enrollment, sign-in, sessions and passkey
//! management. Ceremony state lives in the (database-backed) session between a start and its finish,
//! and is taken out on finish, so each challenge is used at most once.
use std::sync::Arc;

use app::{
    model::{InvitationView, Me, PasskeyView},
    service::{IdentityService, Session, SignedIn, UiError, UserResult},
};
use async_trait::async_trait;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use uuid::Uuid;
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse,
};

use crate::{
    clock::{Clock, Millis},
    identity::{
        approvers::{self, normalise_email, Approver, Role},
        invitations,
        passkeys::{public_key_json, AssertionError, PasskeyError, Passkeys},
    },
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

/// Logs the detail; the person is told only that something went wrong.
pub(crate) fn internal(e: impl std::fmt::Display) -> UiError {
    tracing::error!(error = %e, "identity service error");
    UiError::Internal
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

/// What the person is told when a passkey cannot be used.
pub(crate) fn passkey_refusal(e: PasskeyError) -> UiError {
    match e {
        PasskeyError::NotYours => UiError::Forbidden("This passkey is not one of yours.".into()),
        PasskeyError::Suspended => {
            UiError::Forbidden("This passkey is suspended; use another one.".into())
        }
        PasskeyError::PossibleClone => UiError::Forbidden(
            "This passkey has been suspended: its signature counter went backwards, which can mean it was copied. \
             An admin has been told; use another passkey."
                .into(),
        ),
        PasskeyError::Invalid => UiError::Forbidden(
            "Your passkey could not be verified; nothing was decided. Please try again.".into(),
        ),
        PasskeyError::Unavailable(e) => internal(e),
    }
}

fn disabled() -> UiError {
    UiError::Forbidden("This account is disabled.".into())
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
        return Err(UiError::Invalid(
            "Give the passkey a name of 1 to 60 characters.".into(),
        ));
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
    pub(crate) async fn approver_of(&self, session: &Session) -> UserResult<Option<Approver>> {
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
    pub(crate) async fn usable_passkeys(
        &self,
        approver_id: &str,
    ) -> Result<Vec<Passkey>, PasskeyError> {
        let rows = self.store.passkeys_of(approver_id).await?;
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
    ) -> Result<Passkey, PasskeyError> {
        let row = self
            .store
            .passkey(credential_id)
            .await?
            .filter(|r| r.approver_id == approver_id)
            .ok_or(PasskeyError::NotYours)?;
        if row.suspended_at.is_some() {
            return Err(PasskeyError::Suspended);
        }
        serde_json::from_str(&row.passkey).map_err(|e| PasskeyError::Unavailable(e.to_string()))
    }

    pub(crate) async fn record_use(
        &self,
        credential_id: &str,
        passkey: &Passkey,
        backed_up: bool,
        now: Millis,
    ) -> Result<(), PasskeyError> {
        let stored =
            serde_json::to_string(passkey).map_err(|e| PasskeyError::Unavailable(e.to_string()))?;
        Ok(self
            .store
            .record_passkey_use(credential_id, &stored, backed_up, now)
            .await?)
    }

    /// Suspends a passkey whose signature counter went backwards (a possible clone).
    pub(crate) async fn suspend(&self, credential_id: &str, now: Millis) -> PasskeyError {
        tracing::warn!(
            credential_id,
            "signature counter went backwards; passkey suspended"
        );
        match self
            .store
            .suspend_passkey(credential_id, "signature counter went backwards", now)
            .await
        {
            Ok(()) => PasskeyError::PossibleClone,
            Err(e) => e.into(),
        }
    }

    /// A new session id at sign-in (no fixation), bound to the approver's current epoch.
    async fn begin_session(&self, session: &Session, approver: &Approver) -> UserResult<()> {
        let epoch = self
            .store
            .session_epoch(&approver.id)
            .await
            .map_err(internal)?
            .ok_or_else(disabled)?;
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
    async fn signed_in(&self, session: &Session) -> UserResult<Option<SignedIn>> {
        Ok(self.approver_of(session).await?.map(|approver| SignedIn {
            me: me(&approver),
            requires_user_code: approver.requires_user_code,
            approver_id: approver.id,
            session: session.clone(),
        }))
    }

    async fn invitation(&self, token: &str) -> UserResult<InvitationView> {
        let row = self
            .store
            .invitation(&hash_secret(token))
            .await
            .map_err(internal)?;
        invitations::check(row.as_ref(), self.clock.now()).map_err(UiError::NotFound)?;
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
        invitations::check(row.as_ref(), self.clock.now()).map_err(UiError::NotFound)?;
        let row = row.expect("checked above");
        let email = match (&row.email, email) {
            (Some(invited), _) => invited.clone(),
            (None, Some(given)) => normalise_email(&given),
            (None, None) => return Err(UiError::Invalid("Enter your email.".into())),
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
                approvers::validate_new(&email, &name).map_err(UiError::Invalid)?;
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
        let pending: PendingEnrollment = take(session, ENROLLMENT).await?.ok_or_else(|| {
            UiError::Conflict("Start the enrollment again from your invitation link.".into())
        })?;
        let passkey = self
            .passkeys
            .finish_registration(&credential, &pending.state)
            .map_err(|e| {
                tracing::warn!(error = %e, "passkey registration refused");
                UiError::Invalid("Your passkey could not be registered. Please try again.".into())
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
            return Err(UiError::Conflict(
                "This invitation has already been used or has expired. Ask an admin for a new one."
                    .into(),
            ));
        }
        let approver = approvers::by_id(&self.store, &pending.approver_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| internal("the enrolled approver is missing"))?;
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
        let state: DiscoverableAuthentication = take(session, SIGN_IN).await?.ok_or_else(|| {
            UiError::Conflict(
                "The sign-in took too long or was already used. Please try again.".into(),
            )
        })?;
        let unknown = || {
            UiError::SignedOut("This passkey is not registered with Countersign. Use another passkey, or ask an admin for an invitation.".into())
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
            return Err(UiError::Forbidden("This passkey is suspended because its signature counter went backwards, which can mean it was copied. An admin has been told; use another passkey.".into()));
        }
        let mut passkey: Passkey = serde_json::from_str(&row.passkey).map_err(internal)?;
        let now = self.clock.now();
        match self
            .passkeys
            .finish_sign_in(&credential, state, &mut passkey)
        {
            Ok(backed_up) => self
                .record_use(&credential_id, &passkey, backed_up, now)
                .await
                .map_err(passkey_refusal)?,
            Err(AssertionError::PossibleClone) => {
                return Err(passkey_refusal(self.suspend(&credential_id, now).await))
            }
            Err(AssertionError::Invalid(e)) => {
                tracing::warn!(error = %e, "passkey assertion refused");
                return Err(UiError::SignedOut(
                    "Your passkey could not be verified. Please try again.".into(),
                ));
            }
        }
        let approver = approvers::by_id(&self.store, &row.approver_id)
            .await
            .map_err(internal)?
            .filter(|a| !a.disabled)
            .ok_or_else(disabled)?;
        self.begin_session(session, &approver).await?;
        tracing::info!(approver_id = %approver.id, "signed in");
        Ok(me(&approver))
    }

    async fn sign_out(&self, session: &Session, everywhere: bool) -> UserResult<()> {
        if everywhere {
            if let Some(approver) = self.approver_of(session).await? {
                self.store
                    .bump_session_epoch(&approver.id)
                    .await
                    .map_err(internal)?;
            }
        }
        session.flush().await.map_err(internal)
    }

    async fn passkeys(&self, user: &SignedIn) -> UserResult<Vec<PasskeyView>> {
        let rows = self
            .store
            .passkeys_of(&user.approver_id)
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

    async fn start_add_passkey(&self, user: &SignedIn) -> UserResult<CreationChallengeResponse> {
        let existing = self
            .store
            .passkeys_of(&user.approver_id)
            .await
            .map_err(internal)?
            .iter()
            .filter_map(|r| serde_json::from_str::<Passkey>(&r.passkey).ok())
            .map(|p| p.cred_id().clone())
            .collect();
        let (options, state) = self
            .passkeys
            .start_registration(
                user_uuid(&user.approver_id)?,
                &user.me.email,
                &user.me.name,
                existing,
            )
            .map_err(internal)?;
        put(&user.session, ADDITION, state).await?;
        Ok(options)
    }

    async fn finish_add_passkey(
        &self,
        user: &SignedIn,
        credential: RegisterPublicKeyCredential,
        name: String,
    ) -> UserResult<()> {
        let label = passkey_label(&name)?;
        let state: PasskeyRegistration = take(&user.session, ADDITION)
            .await?
            .ok_or_else(|| UiError::Conflict("Start adding the passkey again.".into()))?;
        let passkey = self
            .passkeys
            .finish_registration(&credential, &state)
            .map_err(|e| {
                tracing::warn!(error = %e, "passkey registration refused");
                UiError::Invalid("The passkey could not be registered. Please try again.".into())
            })?;
        let row = self.passkey_row(&user.approver_id, label, &passkey)?;
        let key = public_key_json(&passkey).map_err(internal)?;
        self.store
            .insert_passkey(&row, &key)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict(_) => {
                    UiError::Conflict("This passkey is already registered.".into())
                }
                other => internal(other),
            })
    }

    async fn rename_passkey(&self, user: &SignedIn, id: String, name: String) -> UserResult<()> {
        let label = passkey_label(&name)?;
        if !self
            .store
            .rename_passkey(&user.approver_id, &id, &label)
            .await
            .map_err(internal)?
        {
            return Err(UiError::NotFound("No such passkey.".into()));
        }
        Ok(())
    }

    async fn remove_passkey(&self, user: &SignedIn, id: String) -> UserResult<()> {
        if !self
            .store
            .remove_passkey(&user.approver_id, &id)
            .await
            .map_err(internal)?
        {
            return Err(UiError::Conflict("Your last passkey cannot be removed: you would be locked out. Add another one first.".into()));
        }
        Ok(())
    }
}
