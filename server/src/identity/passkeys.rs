//! WebAuthn with webauthn-rs: the relying party is the configured public URL (its host is the RP id, the
//! URL itself the only accepted origin). The library's checks stay on: origin, RP id, user verification
//! (required), signature counter (a regression suspends the passkey).
use url::Url;
use uuid::Uuid;
use webauthn_rs::prelude::{
    CreationChallengeResponse, CredentialID, DiscoverableAuthentication, Passkey,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Webauthn, WebauthnBuilder, WebauthnError,
};
use webauthn_rs_proto::ResidentKeyRequirement;

pub struct Passkeys {
    webauthn: Webauthn,
}

/// Why a passkey could not be used for a decision.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("this passkey is not one of the approver's")]
    NotYours,
    #[error("this passkey is suspended")]
    Suspended,
    #[error("the signature counter went backwards, so the passkey is now suspended")]
    PossibleClone,
    #[error("the assertion does not verify")]
    Invalid,
    #[error("passkeys unavailable: {0}")]
    Unavailable(String),
}

impl From<crate::store::StoreError> for PasskeyError {
    fn from(e: crate::store::StoreError) -> PasskeyError {
        PasskeyError::Unavailable(e.to_string())
    }
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

/// A decision ceremony in progress: the library's state (with the bound challenge put in) and the
/// library's own random challenge, kept as the nonce the bound challenge was made from.
pub struct BoundAssertion {
    pub options: RequestChallengeResponse,
    pub state: PasskeyAuthentication,
    pub nonce: Vec<u8>,
}

impl Passkeys {
    /// Assertion options for deciding: only the approver's own passkeys, user verification required,
    /// and the challenge `bind(nonce)` (one that commits to the decision) for a fresh random nonce.
    ///
    /// webauthn-rs always generates the challenge itself (its maintainers decline caller-chosen ones),
    /// so its random challenge becomes the nonce and the bound challenge is written into both the
    /// options and the serialised state. `decision_state_round_trips` guards this against library
    /// changes (webauthn-rs is pinned to 0.6.2).
    pub fn start_bound_assertion(
        &self,
        passkeys: &[Passkey],
        bind: impl FnOnce(&[u8]) -> [u8; 32],
    ) -> Result<BoundAssertion, WebauthnError> {
        let (mut options, state) = self.webauthn.start_passkey_authentication(passkeys)?;
        let nonce: Vec<u8> = options.public_key.challenge.to_vec();
        let challenge = bind(&nonce);
        options.public_key.challenge = challenge.to_vec();
        let state = with_challenge(state, &challenge).map_err(|_| WebauthnError::Configuration)?;
        Ok(BoundAssertion {
            options,
            state,
            nonce,
        })
    }

    /// Verifies a decision assertion; on success returns whether the passkey is backup-eligible
    /// (synced) and updates its counter.
    pub fn finish_bound_assertion(
        &self,
        response: &PublicKeyCredential,
        state: &PasskeyAuthentication,
        passkey: &mut Passkey,
    ) -> Result<(bool, bool), AssertionError> {
        match self.webauthn.finish_passkey_authentication(response, state) {
            Ok(result) => {
                passkey.update_credential(&result);
                Ok((result.backup_eligible(), result.backup_state()))
            }
            Err(WebauthnError::CredentialPossibleCompromise) => Err(AssertionError::PossibleClone),
            Err(e) => Err(AssertionError::Invalid(e)),
        }
    }
}

/// Replaces the challenge inside webauthn-rs's authentication state (its serde form, a base64url string
/// at `ast.challenge`).
fn with_challenge(
    state: PasskeyAuthentication,
    challenge: &[u8],
) -> Result<PasskeyAuthentication, serde_json::Error> {
    let mut value = serde_json::to_value(&state)?;
    value["ast"]["challenge"] = serde_json::Value::String(crate::secrets::base64url(challenge));
    serde_json::from_value(value)
}

/// A passkey's public key as decision records and the key registry keep it: webauthn-rs's `COSEKey`
/// as JSON.
pub fn public_key_json(passkey: &Passkey) -> serde_json::Result<String> {
    serde_json::to_string(passkey.get_public_key())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_state_round_trips() {
        let passkeys = Passkeys::new(&"http://localhost:3000".parse().unwrap()).unwrap();
        let (_, state) = passkeys
            .webauthn
            .start_passkey_authentication(&[])
            .expect("an authentication state");
        let patched = with_challenge(state, &[9u8; 32]).expect("the state keeps its serde shape");
        let value = serde_json::to_value(&patched).unwrap();
        assert_eq!(
            value["ast"]["challenge"],
            crate::secrets::base64url(&[9u8; 32])
        );
    }
}
