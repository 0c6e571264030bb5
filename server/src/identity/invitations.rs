//! One-time enrollment links: valid 24 hours, single use, stored only as a keyed digest of their token.
use crate::{
    clock::Millis,
    identity::approvers::{normalise_email, validate_new, Approver, Role},
    sealing::{BearerDigests, Kek},
    secrets::{random_id, random_token},
    store::{invitations::InvitationRow, Store, StoreError},
};

pub const INVITATION_TTL_MS: Millis = 24 * 60 * 60 * 1000;

/// A recovery's link is short-lived: it enrolls into an account that already has a history.
pub const RECOVERY_TTL_MS: Millis = 60 * 60 * 1000;

/// The path of an enrollment link, relative to the public URL.
pub fn enrollment_path(token: &str) -> String {
    format!("/enroll/{token}")
}

/// Making and finding invitations. A token is stored only as its HMAC under a key derived from the
/// key-encryption key (`sealing::BearerDigests`): the database neither reveals a link nor lets its
/// writer plant one whose token they know.
#[derive(Clone)]
pub struct Invitations {
    store: Store,
    digests: BearerDigests,
}

impl Invitations {
    pub fn new(store: Store, kek: &Kek) -> Invitations {
        Invitations {
            store,
            digests: BearerDigests::new(kek),
        }
    }

    /// What the database keeps of `token`.
    pub fn digest(&self, token: &str) -> String {
        self.digests.of("invitation", token)
    }

    /// The invitation of `token`, used or not.
    pub async fn find(&self, token: &str) -> Result<Option<InvitationRow>, StoreError> {
        self.store.invitation(&self.digest(token)).await
    }

    /// An invitation for `email` as admins make them (console and `approver invite`): the address
    /// and name checked, and refused for an approver who already has a passkey (`check_invitee`);
    /// the token is returned once, or why no invitation was made.
    pub async fn invite(
        &self,
        email: &str,
        name: Option<&str>,
        role: Role,
        issued_by: Option<&str>,
        now: Millis,
        valid_ms: Millis,
    ) -> Result<Result<String, String>, StoreError> {
        let (token, row) = match self
            .prepare(email, name, role, issued_by, now, valid_ms)
            .await?
        {
            Ok(made) => made,
            Err(why) => return Ok(Err(why)),
        };
        self.store.insert_invitation(&row).await?;
        Ok(Ok(token))
    }

    /// The invitation `invite` makes, checked the same, not yet written (an admin's change writes
    /// it with its log entry): its token and row, or why not.
    pub async fn prepare(
        &self,
        email: &str,
        name: Option<&str>,
        role: Role,
        issued_by: Option<&str>,
        now: Millis,
        valid_ms: Millis,
    ) -> Result<Result<(String, InvitationRow), String>, StoreError> {
        let email = normalise_email(email);
        if let Err(why) = validate_new(&email, name.unwrap_or("invitee")) {
            return Ok(Err(why));
        }
        if let Err(why) = check_invitee(&self.store, &email).await? {
            return Ok(Err(why));
        }
        Ok(Ok(self.new_row(
            Some(&email),
            name,
            role,
            issued_by,
            now,
            valid_ms,
        )))
    }

    /// Creates an invitation and returns its token (shown once). `email` None is the first-admin
    /// link, where the person enters who they are. `issued_by`: the admin, or None for the operator.
    pub async fn create(
        &self,
        email: Option<&str>,
        name: Option<&str>,
        role: Role,
        issued_by: Option<&str>,
        now: Millis,
        valid_ms: Millis,
    ) -> Result<String, StoreError> {
        let (token, row) = self.new_row(email, name, role, issued_by, now, valid_ms);
        self.store.insert_invitation(&row).await?;
        Ok(token)
    }

    /// The link of recovery `recovery_id` for `approver` (valid an hour), not yet written: its
    /// token and row.
    pub fn recovery_link(
        &self,
        approver: &Approver,
        recovery_id: &str,
        issued_by: Option<&str>,
        now: Millis,
    ) -> (String, InvitationRow) {
        let (token, mut row) = self.new_row(
            Some(&approver.email),
            Some(&approver.name),
            approver.role,
            issued_by,
            now,
            RECOVERY_TTL_MS,
        );
        row.recovery_id = Some(recovery_id.to_owned());
        (token, row)
    }

    /// A new invitation's token and row.
    fn new_row(
        &self,
        email: Option<&str>,
        name: Option<&str>,
        role: Role,
        issued_by: Option<&str>,
        now: Millis,
        valid_ms: Millis,
    ) -> (String, InvitationRow) {
        let token = random_token(32);
        let row = InvitationRow {
            token_hash: self.digest(&token),
            email: email.map(normalise_email),
            name: name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
            role: role.as_str().to_owned(),
            created_at: now,
            expires_at: now + valid_ms.min(INVITATION_TTL_MS),
            used_at: None,
            approver_id: None,
            id: Some(random_id()),
            issued_by: issued_by.map(str::to_owned),
            recovery_id: None,
        };
        (token, row)
    }

    /// On a start with no approvers at all, a link that enrolls the first admin. Only the newest
    /// such link works: the ones printed at earlier starts end now.
    pub async fn first_admin_link(&self, now: Millis) -> Result<Option<String>, StoreError> {
        if self.store.count_approvers().await? > 0 {
            return Ok(None);
        }
        self.store.expire_open_invitations(now).await?;
        self.create(None, None, Role::Admin, None, now, INVITATION_TTL_MS)
            .await
            .map(Some)
    }
}

/// A link without an e-mail (the first-admin link) enrolls the first approver and no one else. Were
/// it taken once someone is enrolled, whoever opened it could give an existing approver's e-mail and
/// add their own passkey to that account.
pub async fn check_open(
    store: &Store,
    row: &InvitationRow,
) -> Result<Result<(), String>, StoreError> {
    if row.email.is_none() && store.count_approvers().await? > 0 {
        return Ok(Err("This first-admin link can no longer be used: someone is already enrolled. Ask an admin for an invitation.".into()));
    }
    Ok(Ok(()))
}

/// An invitation enrolls a person's first passkey, never another one: were a link for an approver
/// who has a passkey accepted, whoever opened it would sign as that approver, and a rogue admin would
/// be every approver. `email` names someone new, or an approver who never had a passkey (`approver
/// add`).
/// The store checks the same again as it enrolls (`Enrollment::HasPasskey`).
pub async fn check_invitee(store: &Store, email: &str) -> Result<Result<(), String>, StoreError> {
    let Some(approver) = store.approver_by_email(&normalise_email(email)).await? else {
        return Ok(Ok(()));
    };
    if !store.passkeys_of(&approver.id).await?.is_empty() {
        return Ok(Err(already_enrolled(&approver.email)));
    }
    // Their passkeys were revoked: a fresh invitation would let one admin revoke and re-enroll
    // anyone. Getting back in is a recovery, which a second admin approves.
    if store.has_had_passkey(&approver.id).await? {
        return Ok(Err(format!("{} has had a passkey: someone who lost theirs is recovered (Recover, approved by a second admin), not invited again.", approver.email)));
    }
    Ok(Ok(()))
}

/// Who an invitation may enroll: a recovery's link, the approver it recovers while they are
/// active and have no passkey left; any other, what `check_invitee` allows.
pub async fn check_person(
    store: &Store,
    row: &InvitationRow,
    email: &str,
) -> Result<Result<(), String>, StoreError> {
    if row.recovery_id.is_none() {
        return check_invitee(store, email).await;
    }
    match store.approver_by_email(&normalise_email(email)).await? {
        Some(a) if a.disabled == 0 && store.passkeys_of(&a.id).await?.is_empty() => Ok(Ok(())),
        Some(a) if a.disabled == 0 => Ok(Err(already_enrolled(&a.email))),
        _ => Ok(Err(
            "This recovery link is for an account that is no longer active. Ask an admin.".into(),
        )),
    }
}

/// The refusal `check_invitee` and the enrollment give for an approver who has a passkey.
pub fn already_enrolled(email: &str) -> String {
    format!("{email} already has a passkey, and an invitation only enrolls a first passkey. They add another one from their account page, signing in with the passkey they have.")
}

/// An invitation as the enrollment page reads it: who it is for, and how it enrolls.
#[derive(Clone, Debug)]
pub struct Invitation(InvitationRow);

impl Invitation {
    pub fn of(row: InvitationRow) -> Invitation {
        Invitation(row)
    }

    pub(crate) fn row(&self) -> &InvitationRow {
        &self.0
    }

    /// The public id the enrolled key's provenance names (None: made before invitations had ids).
    pub fn id(&self) -> Option<&str> {
        self.0.id.as_deref()
    }

    /// None for the first admin's link: the person says who they are.
    pub fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }

    pub fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    pub fn role(&self) -> Role {
        Role::of_stored(&self.0.role)
    }

    /// The admin who issued it; None: the operator.
    pub fn issued_by(&self) -> Option<&str> {
        self.0.issued_by.as_deref()
    }

    /// The recovery whose link this is.
    pub fn recovery(&self) -> Option<&str> {
        self.0.recovery_id.as_deref()
    }
}

/// Why an invitation cannot be used, in the words the enrollment page shows.
pub fn check(invitation: Option<&Invitation>, now: Millis) -> Result<(), String> {
    match invitation.map(Invitation::row) {
        None => Err("This invitation link is not valid. Check that you copied all of it, or ask an admin for a new one.".into()),
        Some(r) if r.used_at.is_some() => Err("This invitation has already been used. Sign in with your passkey instead, or ask an admin for a new link.".into()),
        Some(r) if r.expires_at <= now => Err("This invitation has expired (links are valid for 24 hours). Ask an admin for a new one.".into()),
        Some(_) => Ok(()),
    }
}
