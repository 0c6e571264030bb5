//! How a passkey's key arrived, as its key registry entry records it (inside the hashed, signed
//! content): through an enrollment invitation and the admin who issued it, added by the approver
//! and authorised by an assertion of a passkey they already had, or through a recovery and its two
//! admins. An addition's authorisation is
//! verifiable by anyone: the earlier passkey signed a challenge that commits to the approver, the new
//! credential and its public key (`addition_challenge`), so no session, admin or database writer can
//! add a key that the registry shows as authorised.
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::{Deserialize, Serialize};

use super::assertion::{KeptAssertion, RelyingParty};
use crate::secrets::{base64url, sha256};

/// Domain separation for the addition challenge, so it can never be a decision's.
const ADDITION_TAG: &[u8] = b"countersign/passkey-addition/v1\0";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case", deny_unknown_fields)]
pub enum Provenance {
    /// Enrolled with an invitation: its id, and the admin who issued it (None: the operator, on the
    /// server's command line).
    Invitation {
        invitation: String,
        issued_by: Option<String>,
    },
    /// Added by its approver, authorised by `authorised_by`, a passkey they already had, with an
    /// assertion whose challenge is `addition_challenge` for this key and `nonce`.
    Addition {
        authorised_by: String,
        assertion: Authorisation,
    },
    /// Enrolled with the link of a recovery, started by one admin and approved by another (both
    /// None: the operator, on the server's command line). The admin log keeps both admins'
    /// passkey confirmations.
    Recovery {
        invitation: String,
        recovery: String,
        started_by: Option<String>,
        approved_by: Option<String>,
    },
}

/// What is wrong with a recovery's provenance on its face: one admin cannot both start and
/// approve it, and an admin's recovery needs both admins.
pub fn recovery_problem(provenance: &Provenance) -> Option<&'static str> {
    let Provenance::Recovery {
        started_by,
        approved_by,
        ..
    } = provenance
    else {
        return None;
    };
    match (started_by, approved_by) {
        (Some(a), Some(b)) if a == b => {
            Some("the recovery was approved by the admin who started it")
        }
        (Some(_), None) | (None, Some(_)) => Some("the recovery names only one of its two admins"),
        _ => None,
    }
}

/// The authorising assertion, each part base64url.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorisation {
    pub nonce: String,
    pub authenticator_data: String,
    pub client_data_json: String,
    pub signature: String,
}

impl Authorisation {
    fn kept(&self) -> KeptAssertion<'_> {
        KeptAssertion {
            authenticator_data: &self.authenticator_data,
            client_data_json: &self.client_data_json,
            signature: &self.signature,
        }
    }

    /// Whether this is an assertion at this site, user-verified, answering `challenge`, signed with
    /// `key` (COSE JSON).
    pub fn answers(
        &self,
        challenge: &[u8; 32],
        key: &str,
        rp: &RelyingParty,
    ) -> Result<(), &'static str> {
        if self.kept().challenge(rp) != Some(base64url(challenge)) {
            return Err("the assertion does not answer this challenge");
        }
        self.kept().signed_by(key, rp)
    }
}

/// The challenge an existing passkey signs to authorise adding `credential_id` with `public_key`
/// (webauthn-rs COSE key JSON) to `approver_id`. Each field is length-prefixed, so no two different
/// additions share an input.
pub fn addition_challenge(
    approver_id: &str,
    credential_id: &str,
    public_key: &str,
    nonce: &[u8],
) -> [u8; 32] {
    let mut input = ADDITION_TAG.to_vec();
    for field in [approver_id.as_bytes(), credential_id.as_bytes()] {
        input.extend_from_slice(&(field.len() as u64).to_be_bytes());
        input.extend_from_slice(field);
    }
    input.extend_from_slice(&sha256(public_key.as_bytes()));
    input.extend_from_slice(nonce);
    sha256(&input)
}

/// The key being vouched for.
pub struct Vouched<'a> {
    pub approver_id: &'a str,
    pub credential_id: &'a str,
    pub public_key: &'a str,
}

/// What is wrong with an addition's authorisation, given the authorising passkey's registry entry
/// (its approver id and public key) if it has a sound one. Invitations are the server's own word,
/// signed with the entry, and need nothing further.
pub fn authorisation_problem(
    provenance: &Provenance,
    key: &Vouched<'_>,
    authoriser: Option<(&str, &str)>,
    rp: &RelyingParty,
) -> Option<&'static str> {
    let Provenance::Addition {
        authorised_by,
        assertion,
    } = provenance
    else {
        return None;
    };
    if authorised_by == key.credential_id {
        return Some("the passkey authorised its own addition");
    }
    let Some((owner, authorising_key)) = authoriser else {
        return Some(
            "the passkey that authorised the addition has no earlier, sound key registry entry",
        );
    };
    if owner != key.approver_id {
        return Some("the passkey that authorised the addition belongs to another approver");
    }
    let Ok(nonce) = URL_SAFE_NO_PAD.decode(&assertion.nonce) else {
        return Some("the authorisation's nonce is not base64url");
    };
    let expected = addition_challenge(key.approver_id, key.credential_id, key.public_key, &nonce);
    if assertion.kept().challenge(rp) != Some(base64url(&expected)) {
        return Some("the authorising assertion does not commit to adding this key");
    }
    assertion.kept().signed_by(authorising_key, rp).err()
}

/// How the account page says it: "with an invitation", "confirmed with …".
pub fn describe(
    provenance: Option<&Provenance>,
    name_of: impl Fn(&str) -> Option<String>,
) -> String {
    match provenance {
        None => "before additions were recorded".into(),
        Some(Provenance::Invitation { .. }) => "with an enrollment link".into(),
        Some(Provenance::Recovery { .. }) => {
            "with a recovery link, after your earlier passkeys ended".into()
        }
        Some(Provenance::Addition { authorised_by, .. }) => match name_of(authorised_by) {
            Some(name) => format!("confirmed with your passkey \u{201c}{name}\u{201d}"),
            None => "confirmed with a passkey since removed".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_addition_challenge_commits_to_every_field() {
        let base = addition_challenge("a", "c", "k", b"n");
        assert_ne!(base, addition_challenge("b", "c", "k", b"n"));
        assert_ne!(base, addition_challenge("a", "d", "k", b"n"));
        assert_ne!(base, addition_challenge("a", "c", "l", b"n"));
        assert_ne!(base, addition_challenge("a", "c", "k", b"m"));
        // Length prefixes: moving a byte between fields changes the input.
        assert_ne!(
            addition_challenge("ab", "c", "k", b"n"),
            addition_challenge("a", "bc", "k", b"n")
        );
        assert_eq!(base, addition_challenge("a", "c", "k", b"n"));
    }

    #[test]
    fn a_recovery_needs_two_different_admins_or_the_operator() {
        let recovery = |started: Option<&str>, approved: Option<&str>| Provenance::Recovery {
            invitation: "i".into(),
            recovery: "r".into(),
            started_by: started.map(Into::into),
            approved_by: approved.map(Into::into),
        };
        assert_eq!(recovery_problem(&recovery(Some("a"), Some("b"))), None);
        assert_eq!(recovery_problem(&recovery(None, None)), None);
        assert!(recovery_problem(&recovery(Some("a"), Some("a"))).is_some());
        assert!(recovery_problem(&recovery(Some("a"), None)).is_some());
        assert!(recovery_problem(&recovery(None, Some("b"))).is_some());
    }

    #[test]
    fn provenance_has_one_json_shape() {
        let p = Provenance::Invitation {
            invitation: "inv".into(),
            issued_by: None,
        };
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"via": "invitation", "invitation": "inv", "issued_by": null})
        );
        assert_eq!(serde_json::from_value::<Provenance>(json).unwrap(), p);
        assert!(serde_json::from_value::<Provenance>(serde_json::json!({"via": "gift"})).is_err());
    }
}
