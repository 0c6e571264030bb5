//! Approvers' accounts as the sign-in, enrollment and passkey pages reach them: sessions' epochs,
//! invitations, and passkeys. The pages' services (`ui::identity`) go through here, never to the
//! store. The rules that must hold under concurrency live in the store's statements and are named
//! here: an invitation enrolls once and only before it expires; the last passkey is never removed.
use std::sync::Arc;

use webauthn_rs::prelude::Passkey;

use super::{
    approvers::{self, Approver},
    registry::{KeyRegistry, NewKey},
};
pub use crate::store::invitations::Enrollment;
use crate::store::{
    approvers::ApproverRow, invitations::InvitationRow, passkeys::PasskeyRow, Store, StoreResult,
};

#[derive(Clone)]
pub struct Accounts {
    store: Store,
    registry: Arc<KeyRegistry>,
}

impl Accounts {
    pub fn new(store: Store, registry: Arc<KeyRegistry>) -> Accounts {
        Accounts { store, registry }
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

    /// The invitation whose token hashes to `token_hash`, used or not.
    pub async fn invitation(&self, token_hash: &str) -> StoreResult<Option<InvitationRow>> {
        self.store.invitation(token_hash).await
    }

    /// Refuses a first-admin link once anyone is enrolled (see `invitations::check_open`).
    pub async fn check_open_invitation(
        &self,
        row: &InvitationRow,
    ) -> StoreResult<Result<(), String>> {
        super::invitations::check_open(&self.store, row).await
    }

    /// Refuses an invitation for an approver who already has a passkey (see `invitations::check_invitee`).
    pub async fn check_invitee(&self, email: &str) -> StoreResult<Result<(), String>> {
        super::invitations::check_invitee(&self.store, email).await
    }

    /// Uses up the invitation (once, and only before it expires), creates the approver when `create`,
    /// and registers the passkey, in one transaction; nothing is written unless it says `Enrolled`.
    pub async fn enroll(
        &self,
        token_hash: &str,
        now: i64,
        approver: &ApproverRow,
        create: bool,
        passkey: &PasskeyRow,
        public_key: &str,
    ) -> StoreResult<Enrollment> {
        let key = new_key(passkey, public_key);
        let seal = self.registry.sealer(&key);
        self.store
            .enroll(token_hash, now, approver, create, passkey, &seal)
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

    /// Registers a passkey, with its public key sealed into the key registry.
    pub async fn insert_passkey(&self, row: &PasskeyRow, public_key: &str) -> StoreResult<()> {
        let key = new_key(row, public_key);
        let seal = self.registry.sealer(&key);
        self.store.insert_passkey(row, &seal).await
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
    pub async fn record_passkey_use(
        &self,
        credential_id: &str,
        passkey: &str,
        backup_state: bool,
        now: i64,
    ) -> StoreResult<()> {
        self.store
            .record_passkey_use(credential_id, passkey, backup_state, now)
            .await
    }

    pub async fn suspend_passkey(
        &self,
        credential_id: &str,
        reason: &str,
        now: i64,
    ) -> StoreResult<()> {
        self.store.suspend_passkey(credential_id, reason, now).await
    }
}

fn new_key<'a>(row: &'a PasskeyRow, public_key: &'a str) -> NewKey<'a> {
    NewKey {
        credential_id: &row.credential_id,
        approver_id: &row.approver_id,
        public_key,
        registered_at: row.created_at,
    }
}
