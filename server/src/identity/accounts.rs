//! Approvers' accounts as the sign-in, enrollment and passkey pages reach them: sessions' epochs,
//! invitations, and passkeys. The pages' services (`ui::identity`) go through here, never to the
//! store. The rules that must hold under concurrency live in the store's statements and are named
//! here: an invitation enrolls once and only before it expires; the last passkey is never removed.
use super::approvers::{self, Approver};
use crate::store::{
    approvers::ApproverRow, invitations::InvitationRow, passkeys::PasskeyRow, Store, StoreResult,
};

#[derive(Clone)]
pub struct Accounts {
    store: Store,
}

impl Accounts {
    pub fn new(store: Store) -> Accounts {
        Accounts { store }
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

    /// Uses up the invitation (once, and only before it expires), creates the approver when `create`,
    /// and registers the passkey, in one transaction; false when the invitation was no longer valid.
    pub async fn enroll(
        &self,
        token_hash: &str,
        now: i64,
        approver: &ApproverRow,
        create: bool,
        passkey: &PasskeyRow,
        public_key: &str,
    ) -> StoreResult<bool> {
        self.store
            .enroll(token_hash, now, approver, create, passkey, public_key)
            .await
    }

    pub async fn passkeys_of(&self, approver_id: &str) -> StoreResult<Vec<PasskeyRow>> {
        self.store.passkeys_of(approver_id).await
    }

    pub async fn passkey(&self, credential_id: &str) -> StoreResult<Option<PasskeyRow>> {
        self.store.passkey(credential_id).await
    }

    /// Registers a passkey and its public key in the key registry the audit checks decisions with.
    pub async fn insert_passkey(&self, row: &PasskeyRow, public_key: &str) -> StoreResult<()> {
        self.store.insert_passkey(row, public_key).await
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
