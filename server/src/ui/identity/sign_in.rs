//! Who is signed in, and signing in and out with a discoverable passkey.
use app::{
    model::Me,
    service::{CeremonyState, IdentityService, Session, SignedIn, UiError, UserResult},
};
use async_trait::async_trait;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, PublicKeyCredential, RequestChallengeResponse,
};

use super::*;
use crate::identity::{accounts::SignInRefusal, ceremonies::Kind};

/// What the person is told when a sign-in is refused.
fn sign_in_refusal(refusal: SignInRefusal) -> UiError {
    match refusal {
        SignInRefusal::Unknown => UiError::SignedOut("This passkey is not registered with Countersign. Use another passkey, or ask an admin for an invitation.".into()),
        SignInRefusal::Suspended => UiError::Forbidden("This passkey is suspended because its signature counter went backwards, which can mean it was copied. An admin has been told; use another passkey.".into()),
        SignInRefusal::PossibleClone => passkey_refusal(PasskeyError::PossibleClone),
        SignInRefusal::Invalid => UiError::SignedOut("Your passkey could not be verified. Please try again.".into()),
        SignInRefusal::Disabled => disabled(),
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

    async fn start_sign_in(
        &self,
        autofill: bool,
    ) -> UserResult<(RequestChallengeResponse, CeremonyState)> {
        let (options, state) = self.webauthn.start_sign_in(autofill).map_err(internal)?;
        let sealed = self.ceremonies.seal(Kind::SignIn, state, self.clock.now());
        Ok((options, CeremonyState(sealed)))
    }

    async fn finish_sign_in(
        &self,
        session: &Session,
        state: Option<CeremonyState>,
        credential: PublicKeyCredential,
    ) -> UserResult<Me> {
        let retry = || {
            UiError::Conflict(
                "The sign-in took too long or was already used. Please try again.".into(),
            )
        };
        let (state, ticket) = self
            .ceremonies
            .open::<DiscoverableAuthentication>(
                Kind::SignIn,
                state.as_ref().map(|s| s.0.as_str()),
                self.clock.now(),
            )
            .map_err(|e| {
                tracing::info!(reason = %e, "a sign-in's state was refused");
                retry()
            })?;
        let now = self.clock.now();
        let verified = self
            .accounts
            .verify_sign_in(&self.webauthn, &credential, state, now)
            .await
            .map_err(passkey_refusal)?
            .map_err(sign_in_refusal)?;
        // Verified: only now is anything written, starting with the state's one use.
        self.ceremonies
            .spend(ticket, now)
            .await
            .map_err(internal)?
            .map_err(|_| retry())?;
        let credential_id = verified.credential_id.clone();
        let approver = self
            .accounts
            .complete_sign_in(verified, now)
            .await
            .map_err(passkey_refusal)?
            .map_err(sign_in_refusal)?;
        self.begin_session(session, &approver, &credential_id)
            .await?;
        tracing::info!(approver_id = %approver.id, "signed in");
        Ok(me(&approver))
    }

    async fn sign_out(&self, session: &Session, everywhere: bool) -> UserResult<()> {
        if everywhere {
            if let Some(approver) = self.approver_of(session).await? {
                self.accounts
                    .end_every_session(&approver.id)
                    .await
                    .map_err(internal)?;
            }
        }
        session.flush().await.map_err(internal)
    }
}
