//! Deciding with a passkey: the port the approval use-case (`ciba::approval`) asks of passkeys, and
//! its implementation with webauthn-rs over the approver's own, usable passkeys (`accounts`). The raw
//! assertion comes back as the evidence the decision record keeps.
use std::sync::Arc;

use async_trait::async_trait;
use webauthn_rs::prelude::{PasskeyAuthentication, PublicKeyCredential, RequestChallengeResponse};

use super::{
    accounts::Accounts,
    passkeys::{public_key_json, AssertionError, PasskeyError, Passkeys},
};
use crate::{clock::Clock, secrets::base64url};

/// The raw assertion a decision was made with, kept so anyone can re-verify it later.
#[derive(Clone, Debug)]
pub struct Evidence {
    pub credential_id: String,
    pub authenticator_data: Vec<u8>,
    pub client_data_json: Vec<u8>,
    pub signature: Vec<u8>,
    pub nonce: Vec<u8>,
    /// The COSE public key the assertion was verified with (webauthn-rs JSON), kept so an auditor can
    /// check the signature offline.
    pub public_key: String,
}

/// What deciding needs of passkeys.
#[async_trait]
pub trait PasskeyVerifier: Send + Sync {
    /// Assertion options for the approver's usable passkeys whose challenge is `bind(nonce)`, where the
    /// nonce is fresh randomness; None when the approver has no usable passkey.
    async fn challenge(
        &self,
        approver_id: &str,
        bind: &(dyn for<'n> Fn(&'n [u8]) -> [u8; 32] + Send + Sync),
    ) -> Result<Option<Challenge>, PasskeyError>;

    /// Verifies `credential` against the ceremony `state` as one of the approver's own passkeys, and
    /// records its use.
    async fn verify(
        &self,
        approver_id: &str,
        state: &str,
        credential: &PublicKeyCredential,
    ) -> Result<Verified, PasskeyError>;
}

/// Assertion options sent to the browser, and what verifying the answer needs.
pub struct Challenge {
    pub options: RequestChallengeResponse,
    pub nonce: Vec<u8>,
    /// The verifier's ceremony state, opaque to the domain.
    pub state: String,
}

/// A verified assertion: the evidence the decision record keeps, and whether the passkey is synced.
pub struct Verified {
    pub evidence: Evidence,
    pub synced: bool,
}

pub struct WebauthnVerifier {
    accounts: Accounts,
    webauthn: Arc<Passkeys>,
    clock: Arc<dyn Clock>,
}

impl WebauthnVerifier {
    pub fn new(
        accounts: Accounts,
        webauthn: Arc<Passkeys>,
        clock: Arc<dyn Clock>,
    ) -> WebauthnVerifier {
        WebauthnVerifier {
            accounts,
            webauthn,
            clock,
        }
    }
}

/// Deciding (and confirming a new passkey) with webauthn-rs: the approver's own, unsuspended
/// passkeys, and the raw assertion kept as evidence.
#[async_trait]
impl PasskeyVerifier for WebauthnVerifier {
    async fn challenge(
        &self,
        approver_id: &str,
        bind: &(dyn for<'n> Fn(&'n [u8]) -> [u8; 32] + Send + Sync),
    ) -> Result<Option<Challenge>, PasskeyError> {
        let passkeys = self.accounts.usable_passkeys(approver_id).await?;
        if passkeys.is_empty() {
            return Ok(None);
        }
        let bound = self
            .webauthn
            .start_bound_assertion(&passkeys, |nonce| bind(nonce))
            .map_err(|e| PasskeyError::Unavailable(e.to_string()))?;
        Ok(Some(Challenge {
            options: bound.options,
            nonce: bound.nonce,
            state: serde_json::to_string(&bound.state)
                .map_err(|e| PasskeyError::Unavailable(e.to_string()))?,
        }))
    }

    async fn verify(
        &self,
        approver_id: &str,
        state: &str,
        credential: &PublicKeyCredential,
    ) -> Result<Verified, PasskeyError> {
        let state: PasskeyAuthentication =
            serde_json::from_str(state).map_err(|e| PasskeyError::Unavailable(e.to_string()))?;
        let credential_id = base64url(credential.raw_id.as_ref());
        let mut passkey = self
            .accounts
            .passkey_of(approver_id, &credential_id)
            .await?;
        let now = self.clock.now();
        let (synced, backed_up) =
            match self
                .webauthn
                .finish_bound_assertion(credential, &state, &mut passkey)
            {
                Ok(flags) => flags,
                Err(AssertionError::PossibleClone) => {
                    return Err(self.accounts.suspend(&credential_id, now).await)
                }
                Err(AssertionError::Invalid(e)) => {
                    tracing::warn!(error = %e, "passkey assertion refused");
                    return Err(PasskeyError::Invalid);
                }
            };
        self.accounts
            .record_use(&credential_id, &passkey, backed_up, now)
            .await?;
        let public_key =
            public_key_json(&passkey).map_err(|e| PasskeyError::Unavailable(e.to_string()))?;
        Ok(Verified {
            evidence: Evidence {
                credential_id,
                authenticator_data: credential.response.authenticator_data.to_vec(),
                client_data_json: credential.response.client_data_json.to_vec(),
                signature: credential.response.signature.to_vec(),
                nonce: Vec::new(),
                public_key,
            },
            synced,
        })
    }
}
