//! Checking a kept WebAuthn assertion offline, with nothing but the bytes the authenticator produced
//! and the public key the key registry holds (WebAuthn §7.2 steps 15–21): made for this site, with the
//! person present and verified, answering a given challenge, and signed by that key. `audit verify`
//! checks decisions and key additions this way, and the server checks an addition's authorisation so
//! before it seals the new key.
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::Value;
use webauthn_rs::prelude::COSEKey;

use crate::secrets::sha256;

/// authenticatorData flags (WebAuthn §6.1): user present, user verified.
const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;

/// The site the passkeys belong to, as the assertions must name it.
pub struct RelyingParty {
    /// The passkeys' RP id: the public URL's host.
    pub id: String,
    /// `clientDataJSON.origin`.
    pub origin: String,
    /// SHA-256 of the RP id (the public URL's host): the first 32 bytes of authenticatorData.
    pub id_hash: [u8; 32],
}

impl RelyingParty {
    pub fn of(public_url: &url::Url) -> RelyingParty {
        RelyingParty {
            id: public_url.host_str().unwrap_or_default().to_owned(),
            origin: public_url.origin().ascii_serialization(),
            id_hash: sha256(public_url.host_str().unwrap_or_default().as_bytes()),
        }
    }
}

/// An assertion as kept: each part base64url without padding.
#[derive(Clone, Copy)]
pub struct KeptAssertion<'a> {
    pub authenticator_data: &'a str,
    pub client_data_json: &'a str,
    pub signature: &'a str,
}

impl KeptAssertion<'_> {
    /// The passkey whose COSE key (webauthn-rs JSON) is `key` signed authenticatorData ‖
    /// SHA-256(clientDataJSON), for this site, with the person present and verified.
    pub fn signed_by(&self, key: &str, rp: &RelyingParty) -> Result<(), &'static str> {
        let key: COSEKey =
            serde_json::from_str(key).map_err(|_| "the recorded public key is unreadable")?;
        let decode = |field: &str| URL_SAFE_NO_PAD.decode(field);
        let (Ok(auth_data), Ok(client_data), Ok(signature)) = (
            decode(self.authenticator_data),
            decode(self.client_data_json),
            decode(self.signature),
        ) else {
            return Err("the recorded assertion is not base64url");
        };
        if auth_data.len() < 37 {
            return Err("the recorded authenticatorData is too short");
        }
        if auth_data[..32] != rp.id_hash[..] {
            return Err(
                "the passkey assertion was made for another site (rpIdHash; is COUNTERSIGN_PUBLIC_URL the server's?)",
            );
        }
        if auth_data[32] & FLAG_UP == 0 || auth_data[32] & FLAG_UV == 0 {
            return Err("the passkey assertion lacks user presence or user verification");
        }
        let mut signed = auth_data;
        signed.extend_from_slice(&sha256(&client_data));
        match key.verify_signature(&signature, &signed) {
            Ok(true) => Ok(()),
            _ => Err("the passkey signature does not verify"),
        }
    }

    /// The challenge (base64url) of a `webauthn.get` made at this site's origin; None for anything else.
    pub fn challenge(&self, rp: &RelyingParty) -> Option<String> {
        let client_data = URL_SAFE_NO_PAD.decode(self.client_data_json).ok()?;
        let client_data = serde_json::from_slice::<Value>(&client_data).ok()?;
        if client_data.get("type").and_then(Value::as_str) != Some("webauthn.get")
            || client_data.get("origin").and_then(Value::as_str) != Some(rp.origin.as_str())
        {
            return None;
        }
        client_data
            .get("challenge")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}
