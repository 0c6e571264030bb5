//! Approvers' accounts as the sign-in, enrollment and passkey pages reach them: sessions' epochs,
//! invitations, and passkeys. The pages' services (`ui::identity`) go through here, never to the
//! store. The rules that must hold under concurrency live in the store's statements and are named
//! here: an invitation enrolls once and only before it expires; the last passkey is never removed.
use std::sync::Arc;

use webauthn_rs::prelude::{DiscoverableAuthentication, Passkey, PublicKeyCredential};

use super::{
    approvers::{self, Approver},
    assertion::RelyingParty,
    invitations::Invitations,
    notices::{AccountNotice, AccountNotices},
    passkeys::{public_key_json, AssertionError, PasskeyError, Passkeys},
    provenance::{authorisation_problem, Authorisation, Provenance, Vouched},
    registry::{KeyRegistry, NewKey},
    sessions::SignedInUser,
};
use crate::{
    clock::Millis,
    identity::{approvers::Role, invitations::Invitation},
    store::{
        approvers::ApproverRow, passkeys::PasskeyRow, recoveries::RecoveryRow, Store, StoreResult,
    },
};

#[derive(Clone)]
pub struct Accounts {
    store: Store,
    registry: Arc<KeyRegistry>,
    rp: Arc<RelyingParty>,
    notices: Arc<dyn AccountNotices>,
    invitations: Invitations,
}

/// An enrollment through an invitation: the approver (created when `create`), the first passkey,
/// and how it arrived.
pub struct Enrolling<'a> {
    /// What the database keeps of the invitation's token (`Invitations::digest`).
    pub token_hash: &'a str,
    pub approver: &'a NewAccount,
    pub create: bool,
    pub passkey: &'a NewPasskey,
    pub provenance: &'a Provenance,
}

/// What enrolling through an invitation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enrollment {
    Enrolled,
    /// The invitation was already used, or expired: nothing was written.
    InvitationSpent,
    /// The approver has or had a passkey: an invitation enrolls a first passkey only, so nothing
    /// was written and the invitation stays unused.
    HasPasskey,
}

/// The approver an enrollment is for (made with it when new).
pub struct NewAccount {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
}

/// A passkey an approver just registered, named `name`.
pub struct NewPasskey {
    pub approver_id: String,
    pub name: String,
    pub key: Passkey,
}

impl NewPasskey {
    pub fn credential_id(&self) -> String {
        crate::secrets::base64url(self.key.cred_id().as_ref())
    }
}

/// One of an approver's passkeys that has a sealed key registry entry, as the account pages see it.
#[derive(Clone, Debug)]
pub struct AccountPasskey {
    pub credential_id: String,
    pub approver_id: String,
    pub name: String,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
    /// Its provider syncs it (backup state).
    pub synced: bool,
    pub suspended: bool,
    pub key: Passkey,
}

impl AccountPasskey {
    fn of(row: PasskeyRow) -> Option<AccountPasskey> {
        let key = serde_json::from_str(&row.passkey).ok()?;
        Some(AccountPasskey {
            synced: row.backup_state != 0,
            suspended: row.suspended_at.is_some(),
            credential_id: row.credential_id,
            approver_id: row.approver_id,
            name: row.name,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            key,
        })
    }
}

/// Why a sign-in was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignInRefusal {
    /// Not a passkey this server registered (or registered for someone else).
    #[error("an unknown passkey")]
    Unknown,
    #[error("a suspended passkey")]
    Suspended,
    /// Its signature counter went backwards: it is suspended now, and an admin is told.
    #[error("a possibly copied passkey")]
    PossibleClone,
    #[error("the assertion does not verify")]
    Invalid,
    #[error("the account is disabled")]
    Disabled,
}

/// A sign-in assertion that verified, before anything about it is written.
pub struct VerifiedSignIn {
    pub credential_id: String,
    approver_id: String,
    passkey: Passkey,
    backed_up: bool,
}

/// Why a passkey was not added.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AdditionRefused {
    #[error("the authorising passkey is not one of the approver's usable passkeys")]
    NotAuthorised,
    #[error("{0}")]
    Authorisation(&'static str),
    #[error("the passkey is registered already")]
    Registered,
}

impl Accounts {
    pub fn new(
        store: Store,
        registry: Arc<KeyRegistry>,
        rp: RelyingParty,
        notices: Arc<dyn AccountNotices>,
        invitations: Invitations,
    ) -> Accounts {
        Accounts {
            store,
            registry,
            rp: Arc::new(rp),
            notices,
            invitations,
        }
    }

    pub async fn approver(&self, id: &str) -> StoreResult<Option<Approver>> {
        approvers::by_id(&self.store, id).await
    }

    pub async fn approver_by_email(&self, email: &str) -> StoreResult<Option<Approver>> {
        approvers::by_email(&self.store, email).await
    }

    /// The approver's session epoch: sessions made in an earlier one are over. None if disabled.
    pub async fn session_epoch(&self, approver_id: &str) -> StoreResult<Option<i64>> {
        self.store.session_epoch(approver_id).await
    }

    /// "Sign out everywhere": every session made before now stops being accepted.
    pub async fn end_every_session(&self, approver_id: &str) -> StoreResult<()> {
        self.store.bump_session_epoch(approver_id).await
    }

    /// The invitation of `token`, used or not, and what the database keeps of the token.
    pub async fn invitation(&self, token: &str) -> StoreResult<(Option<Invitation>, String)> {
        Ok((
            self.invitations.find(token).await?.map(Invitation::of),
            self.invitations.digest(token),
        ))
    }

    /// Refuses a first-admin link once anyone is enrolled (see `invitations::check_open`).
    pub async fn check_open_invitation(
        &self,
        invitation: &Invitation,
    ) -> StoreResult<Result<(), String>> {
        super::invitations::check_open(&self.store, invitation.row()).await
    }

    /// Uses up the invitation (once, and only before it expires), creates the approver when
    /// `enrolling.create`, and registers the passkey with its provenance, in one transaction; nothing
    /// is written unless it says `Enrolled`.
    pub async fn enroll(&self, enrolling: Enrolling<'_>, now: i64) -> StoreResult<Enrollment> {
        let (row, public_key) = passkey_row(enrolling.passkey, now)?;
        let approver = ApproverRow {
            id: enrolling.approver.id.clone(),
            email: enrolling.approver.email.clone(),
            name: enrolling.approver.name.clone(),
            role: enrolling.approver.role.as_str().to_owned(),
            user_code_hash: None,
            disabled: 0,
            created_at: now,
        };
        let key = new_key(&row, &public_key, enrolling.provenance);
        let seal = self.registry.sealer(&key);
        self.store
            .enroll(
                enrolling.token_hash,
                now,
                &approver,
                enrolling.create,
                &row,
                &seal,
            )
            .await
    }

    /// The approver's passkeys that may sign in or decide (see `passkeys_of`), for their pages.
    pub async fn passkeys(&self, approver_id: &str) -> StoreResult<Vec<AccountPasskey>> {
        Ok(self
            .passkeys_of(approver_id)
            .await?
            .into_iter()
            .filter_map(AccountPasskey::of)
            .collect())
    }

    /// One passkey by credential id, if it has a sealed key registry entry (see `passkey_row_of`).
    pub async fn passkey(&self, credential_id: &str) -> StoreResult<Option<AccountPasskey>> {
        Ok(self
            .passkey_row_of(credential_id)
            .await?
            .and_then(AccountPasskey::of))
    }

    /// The approver's passkeys that have a sealed key registry entry: only these may sign in or decide.
    async fn passkeys_of(&self, approver_id: &str) -> StoreResult<Vec<PasskeyRow>> {
        let mut admitted = Vec::new();
        for row in self.store.passkeys_of(approver_id).await? {
            if self.admits(&row).await? {
                admitted.push(row);
            }
        }
        Ok(admitted)
    }

    /// A passkey by credential id, if it has a sealed key registry entry.
    async fn passkey_row_of(&self, credential_id: &str) -> StoreResult<Option<PasskeyRow>> {
        match self.store.passkey(credential_id).await? {
            Some(row) if self.admits(&row).await? => Ok(Some(row)),
            _ => Ok(None),
        }
    }

    async fn admits(&self, row: &PasskeyRow) -> StoreResult<bool> {
        let Ok(passkey) = serde_json::from_str::<Passkey>(&row.passkey) else {
            return Ok(false);
        };
        self.registry
            .admits(&row.credential_id, &row.approver_id, &passkey)
            .await
    }

    /// Adds a passkey `new.approver_id` registered, authorised by `authorised_by`, a usable passkey
    /// they already have, whose assertion signed the addition challenge for exactly this key. The
    /// authorisation is checked here as `audit verify` will check it, then sealed into the key's
    /// registry entry with it, and the approver is told.
    pub async fn add_passkey(
        &self,
        new: &NewPasskey,
        authorised_by: &str,
        authorisation: Authorisation,
        now: Millis,
    ) -> StoreResult<Result<(), AdditionRefused>> {
        let (row, public_key) = passkey_row(new, now)?;
        let (row, public_key) = (&row, public_key.as_str());
        let Some((authoriser, authorising_key)) =
            self.signing_key(&row.approver_id, authorised_by).await?
        else {
            return Ok(Err(AdditionRefused::NotAuthorised));
        };
        let provenance = Provenance::Addition {
            authorised_by: authorised_by.to_owned(),
            assertion: authorisation,
        };
        let vouched = Vouched {
            approver_id: &row.approver_id,
            credential_id: &row.credential_id,
            public_key,
        };
        if let Some(problem) = authorisation_problem(
            &provenance,
            &vouched,
            Some((&authoriser.approver_id, &authorising_key)),
            &self.rp,
        ) {
            return Ok(Err(AdditionRefused::Authorisation(problem)));
        }
        let key = new_key(row, public_key, &provenance);
        let seal = self.registry.sealer(&key);
        match self.store.insert_passkey(row, &seal).await {
            Err(crate::store::StoreError::Conflict(_)) => {
                return Ok(Err(AdditionRefused::Registered))
            }
            other => other?,
        }
        if let Some(approver) = self.approver(&row.approver_id).await? {
            self.notices.tell(AccountNotice {
                approver_id: approver.id,
                email: approver.email,
                name: approver.name,
                title: format!("A passkey was added to your account: {}", row.name),
                body: format!(
                    "The passkey \u{201c}{}\u{201d} was added to your Countersign account, confirmed with your passkey \u{201c}{}\u{201d}. It can now approve requests as you.",
                    row.name, authoriser.name
                ),
            });
        }
        Ok(Ok(()))
    }

    /// `credential_id` with its public key (COSE JSON), if it is a usable passkey of `approver_id`:
    /// the key an authorising assertion must verify with.
    async fn signing_key(
        &self,
        approver_id: &str,
        credential_id: &str,
    ) -> StoreResult<Option<(PasskeyRow, String)>> {
        let Some(row) = self
            .passkey_row_of(credential_id)
            .await?
            .filter(|p| p.signs_for(approver_id))
        else {
            return Ok(None);
        };
        Ok(serde_json::from_str::<Passkey>(&row.passkey)
            .ok()
            .and_then(|p| public_key_json(&p).ok())
            .map(|key| (row, key)))
    }

    /// Whether `assertion`, made by `credential_id`, is a user-verified answer to `challenge` at
    /// this site by a usable passkey of `approver_id`: checked offline, as `audit verify` checks it
    /// later. The passkey, or why not.
    pub async fn authorises(
        &self,
        approver_id: &str,
        credential_id: &str,
        assertion: &Authorisation,
        challenge: &[u8; 32],
    ) -> StoreResult<Result<AccountPasskey, &'static str>> {
        let Some((row, key)) = self.signing_key(approver_id, credential_id).await? else {
            return Ok(Err("the passkey is not a usable passkey of this person"));
        };
        let Some(passkey) = AccountPasskey::of(row) else {
            return Ok(Err("the passkey's stored key does not read"));
        };
        Ok(assertion
            .answers(challenge, &key, &self.rp)
            .map(|()| passkey))
    }

    /// Tells approver `approver_id`, on every channel they have (e-mail, push), about a change
    /// to their account.
    pub async fn tell(&self, approver_id: &str, title: String, body: String) -> StoreResult<()> {
        if let Some(approver) = self.approver(approver_id).await? {
            self.notices.tell(AccountNotice {
                approver_id: approver.id,
                email: approver.email,
                name: approver.name,
                title,
                body,
            });
        }
        Ok(())
    }

    pub async fn recovery(&self, id: &str) -> StoreResult<Option<RecoveryRow>> {
        self.store.recovery(id).await
    }

    /// Who may enroll through `invitation` as `email` (see `invitations::check_person`).
    pub async fn check_person(
        &self,
        invitation: &Invitation,
        email: &str,
    ) -> StoreResult<Result<(), String>> {
        super::invitations::check_person(&self.store, invitation.row(), email).await
    }

    /// How a passkey came to be registered, as its sound registry entry records it (None: sealed
    /// before provenance was recorded).
    pub async fn provenance_of(&self, credential_id: &str) -> StoreResult<Option<Provenance>> {
        self.registry.provenance(credential_id).await
    }

    pub async fn rename_passkey(
        &self,
        approver_id: &str,
        credential_id: &str,
        name: &str,
    ) -> StoreResult<bool> {
        self.store
            .rename_passkey(approver_id, credential_id, name)
            .await
    }

    /// Removes one of the approver's passkeys, never their last; false when refused or unknown.
    pub async fn remove_passkey(
        &self,
        approver_id: &str,
        credential_id: &str,
    ) -> StoreResult<bool> {
        self.store.remove_passkey(approver_id, credential_id).await
    }

    /// Checks a sign-in: the passkey one of this server's, of the user it names, not suspended, and
    /// its assertion answering `state`. Nothing is written but a suspension when the signature
    /// counter went backwards; `complete_sign_in` writes the rest.
    pub async fn verify_sign_in(
        &self,
        passkeys: &Passkeys,
        credential: &PublicKeyCredential,
        state: DiscoverableAuthentication,
        now: Millis,
    ) -> Result<Result<VerifiedSignIn, SignInRefusal>, PasskeyError> {
        let Ok((user, credential_id)) = passkeys.identify(credential) else {
            return Ok(Err(SignInRefusal::Unknown));
        };
        let credential_id = crate::secrets::base64url(credential_id);
        let Some(row) = self.passkey(&credential_id).await? else {
            return Ok(Err(SignInRefusal::Unknown));
        };
        if uuid::Uuid::parse_str(&row.approver_id).ok() != Some(user) {
            return Ok(Err(SignInRefusal::Unknown));
        }
        if row.suspended {
            return Ok(Err(SignInRefusal::Suspended));
        }
        let mut passkey = row.key;
        match passkeys.finish_sign_in(credential, state, &mut passkey) {
            Ok(backed_up) => Ok(Ok(VerifiedSignIn {
                credential_id,
                approver_id: row.approver_id,
                passkey,
                backed_up,
            })),
            Err(AssertionError::PossibleClone) => match self.suspend(&credential_id, now).await {
                PasskeyError::PossibleClone => Ok(Err(SignInRefusal::PossibleClone)),
                other => Err(other),
            },
            Err(AssertionError::Invalid(e)) => {
                tracing::warn!(error = %e, "passkey assertion refused");
                Ok(Err(SignInRefusal::Invalid))
            }
        }
    }

    /// Records a verified sign-in's use of its passkey; the approver it signs in, unless disabled.
    pub async fn complete_sign_in(
        &self,
        verified: VerifiedSignIn,
        now: Millis,
    ) -> Result<Result<Approver, SignInRefusal>, PasskeyError> {
        self.record_use(
            &verified.credential_id,
            &verified.passkey,
            verified.backed_up,
            now,
        )
        .await?;
        Ok(self
            .approver(&verified.approver_id)
            .await?
            .filter(|a| !a.disabled)
            .ok_or(SignInRefusal::Disabled))
    }

    /// After a verified assertion: the passkey's new counter and backup state.
    pub async fn record_use(
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
    pub async fn suspend(&self, credential_id: &str, now: Millis) -> PasskeyError {
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

    /// The approver's passkeys that may still sign: sealed, not suspended.
    pub async fn usable_passkeys(&self, approver_id: &str) -> Result<Vec<Passkey>, PasskeyError> {
        Ok(self
            .passkeys(approver_id)
            .await?
            .into_iter()
            .filter(|p| !p.suspended)
            .map(|p| p.key)
            .collect())
    }

    /// One of the approver's passkeys by credential id, refusing suspended ones.
    pub async fn passkey_of(
        &self,
        approver_id: &str,
        credential_id: &str,
    ) -> Result<Passkey, PasskeyError> {
        let row = self
            .passkey_row_of(credential_id)
            .await?
            .filter(|r| r.approver_id == approver_id)
            .ok_or(PasskeyError::NotYours)?;
        if row.suspended_at.is_some() {
            return Err(PasskeyError::Suspended);
        }
        serde_json::from_str(&row.passkey).map_err(|e| PasskeyError::Unavailable(e.to_string()))
    }

    /// Whom the session made for `user` still signs in at `now`: nobody once the approver's epoch
    /// moved on ("sign out everywhere", offboarding), after the absolute lifetime, or when the passkey
    /// it was made with is gone, suspended or not named at all.
    pub async fn session_holder(
        &self,
        user: &SignedInUser,
        now: Millis,
        max_session_ms: Millis,
    ) -> StoreResult<Option<Approver>> {
        let epoch = self.session_epoch(&user.approver_id).await?;
        let fresh = now - user.since < max_session_ms;
        let passkey_kept = match &user.credential_id {
            Some(credential_id) => self
                .passkey_row_of(credential_id)
                .await?
                .is_some_and(|p| p.signs_for(&user.approver_id)),
            None => false,
        };
        if epoch != Some(user.epoch) || !fresh || !passkey_kept {
            return Ok(None);
        }
        self.approver(&user.approver_id).await
    }
}

/// The row of a passkey just registered, and its public key (COSE JSON) for the key registry.
fn passkey_row(new: &NewPasskey, now: Millis) -> StoreResult<(PasskeyRow, String)> {
    let unreadable = |e: serde_json::Error| crate::store::StoreError::Unavailable(e.to_string());
    let row = PasskeyRow {
        credential_id: new.credential_id(),
        approver_id: new.approver_id.clone(),
        name: new.name.clone(),
        passkey: serde_json::to_string(&new.key).map_err(unreadable)?,
        backup_state: 0,
        created_at: now,
        last_used_at: None,
        suspended_at: None,
        suspended_reason: None,
    };
    Ok((row, public_key_json(&new.key).map_err(unreadable)?))
}

fn new_key<'a>(row: &'a PasskeyRow, public_key: &'a str, provenance: &'a Provenance) -> NewKey<'a> {
    NewKey {
        credential_id: &row.credential_id,
        approver_id: &row.approver_id,
        public_key,
        registered_at: row.created_at,
        provenance: Some(provenance),
    }
}
