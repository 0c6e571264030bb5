//! The account page's passkeys: listing, adding, renaming and removing (never the last one).
use app::{
    model::PasskeyView,
    service::{PasskeyService, SignedIn, UiError, UserResult},
};
use async_trait::async_trait;
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyRegistration, RegisterPublicKeyCredential,
};

use super::*;

const ADDITION: &str = "passkey_addition";

#[async_trait]
impl PasskeyService for IdentityApp {
    async fn passkeys(&self, user: &SignedIn) -> UserResult<Vec<PasskeyView>> {
        let rows = self
            .accounts
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
            .accounts
            .passkeys_of(&user.approver_id)
            .await
            .map_err(internal)?
            .iter()
            .filter_map(|r| serde_json::from_str::<Passkey>(&r.passkey).ok())
            .map(|p| p.cred_id().clone())
            .collect();
        let (options, state) = self
            .webauthn
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
            .webauthn
            .finish_registration(&credential, &state)
            .map_err(|e| {
                tracing::warn!(error = %e, "passkey registration refused");
                UiError::Invalid("The passkey could not be registered. Please try again.".into())
            })?;
        let row = self.passkey_row(&user.approver_id, label, &passkey)?;
        let key = public_key_json(&passkey).map_err(internal)?;
        self.accounts
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
            .accounts
            .rename_passkey(&user.approver_id, &id, &label)
            .await
            .map_err(internal)?
        {
            return Err(UiError::NotFound("No such passkey.".into()));
        }
        Ok(())
    }

    async fn remove_passkey(&self, user: &SignedIn, id: String) -> UserResult<()> {
        // Removing a passkey ends the sessions it made; this one would end mid-page.
        if self.session_passkey(&user.session).await?.as_deref() == Some(id.as_str()) {
            return Err(UiError::Conflict("You signed in with this passkey, so it cannot be removed from this session. Sign in with another passkey to remove it.".into()));
        }
        if !self
            .accounts
            .remove_passkey(&user.approver_id, &id)
            .await
            .map_err(internal)?
        {
            return Err(UiError::Conflict("Your last passkey cannot be removed: you would be locked out. Add another one first.".into()));
        }
        Ok(())
    }
}
