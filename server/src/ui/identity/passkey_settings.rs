//! The account page's passkeys: listing (with how each arrived), adding, renaming and removing (never
//! the last one). Adding takes two ceremonies: the new passkey is registered, then a passkey the
//! account already has confirms it with a user-verified assertion whose challenge commits to the new
//! key (`identity::provenance`), so a session alone never adds signing power.
use app::{
    model::PasskeyView,
    service::{PasskeyService, SignedIn, UiError, UserResult},
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse,
};

use super::*;
use crate::identity::{
    accounts::{AdditionRefused, NewPasskey},
    provenance::{addition_challenge, describe, Authorisation},
    verifier::PasskeyVerifier,
};

/// The registration ceremony of an addition, the passkey it registered, then its confirmation by an
/// existing passkey.
const ADDITION: &str = "passkey_addition";
const REGISTERED: &str = "passkey_addition_registered";
const CONFIRMATION: &str = "passkey_addition_confirmation";

const NO_CONFIRMATION: &str = "None of your passkeys can confirm a new one (they are suspended). Ask an admin to recover your account.";

const NOT_CONFIRMED: &str =
    "Your passkey could not confirm the new one; nothing was added. Please try again.";

/// A date as the account page shows it: "3 Dec 2026" (UTC).
fn day(ms: Millis) -> String {
    let format = time::macros::format_description!("[day padding:none] [month repr:short] [year]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

/// A registered passkey, not yet added.
#[derive(Serialize, Deserialize)]
struct Registered {
    passkey: Passkey,
    name: String,
}

/// A registered passkey waiting for a passkey the account already has to confirm it, with the
/// verifier's ceremony state, whose challenge commits to exactly this key.
#[derive(Serialize, Deserialize)]
struct PendingAddition {
    passkey: Passkey,
    name: String,
    state: String,
    nonce: Vec<u8>,
}

#[async_trait]
impl PasskeyService for IdentityApp {
    async fn passkeys(&self, user: &SignedIn) -> UserResult<Vec<PasskeyView>> {
        let rows = self
            .accounts
            .passkeys(&user.approver_id)
            .await
            .map_err(internal)?;
        let name_of = |id: &str| {
            rows.iter()
                .find(|r| r.credential_id == id)
                .map(|r| r.name.clone())
        };
        let mut views = Vec::with_capacity(rows.len());
        for r in &rows {
            let provenance = self
                .accounts
                .provenance_of(&r.credential_id)
                .await
                .map_err(internal)?;
            views.push(PasskeyView {
                id: r.credential_id.clone(),
                name: r.name.clone(),
                created_at: r.created_at,
                added: format!(
                    "Added {}, {}",
                    day(r.created_at),
                    describe(provenance.as_ref(), name_of)
                ),
                last_used_at: r.last_used_at,
                synced: r.synced,
                suspended: r.suspended,
            });
        }
        Ok(views)
    }

    async fn start_add_passkey(&self, user: &SignedIn) -> UserResult<CreationChallengeResponse> {
        let existing = self
            .accounts
            .passkeys(&user.approver_id)
            .await
            .map_err(internal)?
            .iter()
            .map(|p| p.key.cred_id().clone())
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
        put(
            &user.session,
            REGISTERED,
            Registered {
                passkey,
                name: label,
            },
        )
        .await
    }

    async fn start_confirm_add_passkey(
        &self,
        user: &SignedIn,
    ) -> UserResult<RequestChallengeResponse> {
        let registered: Registered = take(&user.session, REGISTERED)
            .await?
            .ok_or_else(|| UiError::Conflict("Start adding the passkey again.".into()))?;
        let credential_id = base64url(registered.passkey.cred_id().as_ref());
        let key = public_key_json(&registered.passkey).map_err(internal)?;
        let bind =
            |nonce: &[u8]| addition_challenge(&user.approver_id, &credential_id, &key, nonce);
        let challenge = self
            .verifier
            .challenge(&user.approver_id, &bind)
            .await
            .map_err(passkey_refusal)?
            .ok_or_else(|| UiError::Forbidden(NO_CONFIRMATION.into()))?;
        put(
            &user.session,
            CONFIRMATION,
            PendingAddition {
                passkey: registered.passkey,
                name: registered.name,
                state: challenge.state,
                nonce: challenge.nonce,
            },
        )
        .await?;
        Ok(challenge.options)
    }

    async fn confirm_add_passkey(
        &self,
        user: &SignedIn,
        assertion: PublicKeyCredential,
    ) -> UserResult<()> {
        let pending: PendingAddition = take(&user.session, CONFIRMATION)
            .await?
            .ok_or_else(|| UiError::Conflict("Start adding the passkey again.".into()))?;
        let verified = self
            .verifier
            .verify(&user.approver_id, &pending.state, &assertion)
            .await
            .map_err(|e| match e {
                PasskeyError::Invalid => UiError::Forbidden(NOT_CONFIRMED.into()),
                other => passkey_refusal(other),
            })?;
        let new = NewPasskey {
            approver_id: user.approver_id.clone(),
            name: pending.name,
            key: pending.passkey,
        };
        let evidence = verified.evidence;
        let authorisation = Authorisation {
            nonce: base64url(&pending.nonce),
            authenticator_data: base64url(&evidence.authenticator_data),
            client_data_json: base64url(&evidence.client_data_json),
            signature: base64url(&evidence.signature),
        };
        match self
            .accounts
            .add_passkey(
                &new,
                &evidence.credential_id,
                authorisation,
                self.clock.now(),
            )
            .await
            .map_err(internal)?
        {
            Ok(()) => {
                tracing::info!(approver_id = %user.approver_id, credential_id = %new.credential_id(), authorised_by = %evidence.credential_id, "passkey added");
                Ok(())
            }
            Err(AdditionRefused::Registered) => Err(UiError::Conflict(
                "This passkey is already registered.".into(),
            )),
            Err(refused) => {
                tracing::warn!(error = %refused, "passkey addition refused");
                Err(UiError::Forbidden(NOT_CONFIRMED.into()))
            }
        }
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
