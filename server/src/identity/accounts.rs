//! Approvers' accounts as the sign-in, enrollment and passkey pages reach them: sessions' epochs,
//! invitations, and passkeys. The pages' services (`ui::identity`) go through here, never to the
//! store. The rules that must hold under concurrency live in the store's statements and are named
//! here: an invitation enrolls once and only before it expires; the last passkey is never removed.
use std::sync::Arc;

use webauthn_rs::prelude::Passkey;

use super::{
    approvers::{self, Approver},
    assertion::RelyingParty,
    invitations::Invitations,
    notices::{AccountNotice, AccountNotices},
    passkeys::{public_key_json, PasskeyError},
    provenance::{authorisation_problem, Authorisation, Provenance, Vouched},
    registry::{KeyRegistry, NewKey},
    sessions::SignedInUser,
};
pub use crate::store::invitations::Enrollment;
/// The rows the identity pages hand back in: an approver being enrolled, a passkey being added.
pub use crate::store::{approvers::ApproverRow, passkeys::PasskeyRow};
use crate::{
    clock::Millis,
    store::{invitations::InvitationRow, recoveries::RecoveryRow, Store, StoreResult},
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
/// its public key and how it arrived.
pub struct Enrolling<'a> {
    /// What the database keeps of the invitation's token (`Invitations::digest`).
    pub token_hash: &'a str,
    pub approver: &'a ApproverRow,
    pub create: bool,
    pub passkey: &'a PasskeyRow,
    pub public_key: &'a str,
    pub provenance: &'a Provenance,
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
    pub async fn invitation(&self, token: &str) -> StoreResult<(Option<InvitationRow>, String)> {
        Ok((
            self.invitations.find(token).await?,
            self.invitations.digest(token),
        ))
    }

    /// Refuses a first-admin link once anyone is enrolled (see `invitations::check_open`).
    pub async fn check_open_invitation(
        &self,
        row: &InvitationRow,
    ) -> StoreResult<Result<(), String>> {
        super::invitations::check_open(&self.store, row).await
    }

    /// Uses up the invitation (once, and only before it expires), creates the approver when
    /// `enrolling.create`, and registers the passkey with its provenance, in one transaction; nothing
    /// is written unless it says `Enrolled`.
    pub async fn enroll(&self, enrolling: Enrolling<'_>, now: i64) -> StoreResult<Enrollment> {
        let key = new_key(
            enrolling.passkey,
            enrolling.public_key,
            enrolling.provenance,
        );
        let seal = self.registry.sealer(&key);
        self.store
            .enroll(
                enrolling.token_hash,
                now,
                enrolling.approver,
                enrolling.create,
                enrolling.passkey,
                &seal,
            )
            .await
    }

    /// The approver's passkeys that have a sealed key registry entry: only these may sign in or decide.
    pub async fn passkeys_of(&self, approver_id: &str) -> StoreResult<Vec<PasskeyRow>> {
        let mut admitted = Vec::new();
        for row in self.store.passkeys_of(approver_id).await? {
            if self.admits(&row).await? {
                admitted.push(row);
            }
        }
        Ok(admitted)
    }

    /// A passkey by credential id, if it has a sealed key registry entry.
    pub async fn passkey(&self, credential_id: &str) -> StoreResult<Option<PasskeyRow>> {
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

    /// Adds a passkey `row.approver_id` registered, authorised by `authorised_by`, a usable passkey
    /// they already have, whose assertion signed the addition challenge for exactly this key. The
    /// authorisation is checked here as `audit verify` will check it, then sealed into the key's
    /// registry entry with it, and the approver is told.
    pub async fn add_passkey(
        &self,
        row: &PasskeyRow,
        public_key: &str,
        authorised_by: &str,
        authorisation: Authorisation,
    ) -> StoreResult<Result<(), AdditionRefused>> {
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
            .passkey(credential_id)
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
    ) -> StoreResult<Result<PasskeyRow, &'static str>> {
        let Some((row, key)) = self.signing_key(approver_id, credential_id).await? else {
            return Ok(Err("the passkey is not a usable passkey of this person"));
        };
        Ok(assertion.answers(challenge, &key, &self.rp).map(|()| row))
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

    /// Who may enroll through invitation `row` as `email` (see `invitations::check_person`).
    pub async fn check_person(
        &self,
        row: &InvitationRow,
        email: &str,
    ) -> StoreResult<Result<(), String>> {
        super::invitations::check_person(&self.store, row, email).await
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
        let rows = self.passkeys_of(approver_id).await?;
        Ok(rows
            .iter()
            .filter(|r| r.suspended_at.is_none())
            .filter_map(|r| serde_json::from_str(&r.passkey).ok())
            .collect())
    }

    /// One of the approver's passkeys by credential id, refusing suspended ones.
    pub async fn passkey_of(
        &self,
        approver_id: &str,
        credential_id: &str,
    ) -> Result<Passkey, PasskeyError> {
        let row = self
            .passkey(credential_id)
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
                .passkey(credential_id)
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

/// The row of a passkey `approver_id` just registered, named `name`.
pub fn new_passkey_row(
    approver_id: &str,
    name: String,
    passkey: &Passkey,
    now: Millis,
) -> serde_json::Result<PasskeyRow> {
    Ok(PasskeyRow {
        credential_id: crate::secrets::base64url(passkey.cred_id().as_ref()),
        approver_id: approver_id.to_owned(),
        name,
        passkey: serde_json::to_string(passkey)?,
        backup_state: 0,
        created_at: now,
        last_used_at: None,
        suspended_at: None,
        suspended_reason: None,
    })
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
