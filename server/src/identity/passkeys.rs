//! WebAuthn with webauthn-rs: the relying party is the configured public URL (its host is the RP id, the
//! URL itself the only accepted origin). The library's checks stay on: origin, RP id, user verification
//! (required), signature counter (a regression suspends the passkey).
use url::Url;
use uuid::Uuid;
use webauthn_rs::prelude::{
    CreationChallengeResponse, CredentialID, DiscoverableAuthentication, Passkey,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Webauthn, WebauthnBuilder, WebauthnError,
};
use webauthn_rs_proto::ResidentKeyRequirement;

pub struct Passkeys {
    webauthn: Webauthn,
}

/// How an authentication failed.
#[derive(Debug)]
pub enum AssertionError {
    /// The signature counter went backwards: the credential may have been cloned.
    PossibleClone,
    Invalid(WebauthnError),
}

impl Passkeys {
    pub fn new(public_url: &Url) -> Result<Passkeys, WebauthnError> {
        let rp_id = public_url.host_str().ok_or(WebauthnError::Configuration)?;
        let webauthn = WebauthnBuilder::new(rp_id, public_url)?
            .rp_name("Countersign")
            .build()?;
        Ok(Passkeys { webauthn })
    }

    /// Registration options: user verification required, no attestation, and a discoverable credential
    /// preferred (so sign-in needs no email) without refusing authenticators that cannot store one.
    pub fn start_registration(
        &self,
        user: Uuid,
        email: &str,
        name: &str,
        existing: Vec<CredentialID>,
    ) -> Result<(CreationChallengeResponse, PasskeyRegistration), WebauthnError> {
        let (mut options, state) = self.webauthn.start_passkey_registration(
            user,
            email,
            name,
            Some(existing).filter(|e| !e.is_empty()),
        )?;
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Preferred);
            selection.require_resident_key = false;
        }
        Ok((options, state))
    }

    pub fn finish_registration(
        &self,
        response: &RegisterPublicKeyCredential,
        state: &PasskeyRegistration,
    ) -> Result<Passkey, WebauthnError> {
        self.webauthn.finish_passkey_registration(response, state)
    }

    /// Options for a discoverable-credential sign-in: in a modal prompt, or (`autofill`) offered by the
    /// browser's autofill on the sign-in form.
    pub fn start_sign_in(
        &self,
        autofill: bool,
    ) -> Result<(RequestChallengeResponse, DiscoverableAuthentication), WebauthnError> {
        let (mut options, state) = self.webauthn.start_discoverable_authentication()?;
        if !autofill {
            options.mediation = None;
        }
        Ok((options, state))
    }

    /// The user handle and credential id an assertion claims, before it is verified.
    pub fn identify<'a>(
        &self,
        response: &'a PublicKeyCredential,
    ) -> Result<(Uuid, &'a [u8]), WebauthnError> {
        self.webauthn.identify_discoverable_authentication(response)
    }

    /// Verifies the assertion against `passkey` and updates its counter and backup state.
    pub fn finish_sign_in(
        &self,
        response: &PublicKeyCredential,
        state: DiscoverableAuthentication,
        passkey: &mut Passkey,
    ) -> Result<bool, AssertionError> {
        match self
            .webauthn
            .finish_discoverable_authentication_v2(response, state, &*passkey)
        {
            Ok(result) => {
                passkey.update_credential(&result);
                Ok(result.backup_state())
            }
            Err(WebauthnError::CredentialPossibleCompromise) => Err(AssertionError::PossibleClone),
            Err(e) => Err(AssertionError::Invalid(e)),
        }
    }
}
