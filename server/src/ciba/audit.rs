//! Re-verifying the decision record (`countersign audit verify`): the hash chain, the server's JWS on
//! each record, that each request is still the one decided on, that each passkey assertion's challenge
//! commits to exactly that decision, and that the approver's passkey really signed it: the signature
//! verifies with the recorded public key, and that key is the one registered for that approver's
//! passkey (the append-only key registry). Whoever holds the server's signing key could forge a
//! record, chain and JWS included, but not the approver's signature; a forger would also have to
//! rewrite the key registry, which the registry's own append-only guard and any copy of it expose.
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::Serialize;
use serde_json::Value;
use webauthn_rs::prelude::COSEKey;

use super::record::{decision_challenge, request_digest, seal_problems};
use crate::{
    secrets::{base64url, hex, sha256},
    signing::ArchiveVerifier,
    store::{
        decisions::{Covered, DecisionRow, GENESIS_HASH},
        Store, StoreError,
    },
};

/// authenticatorData flags (WebAuthn §6.1): user present, user verified.
const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;

#[derive(Debug, Serialize)]
pub struct Finding {
    /// The decision record's sequence number; none for a request or token that lacks its record.
    pub seq: Option<i64>,
    pub auth_req_id: String,
    pub problem: String,
}

#[derive(Debug, Serialize)]
pub struct AuditReport {
    pub records: usize,
    /// Records whose passkey signature was checked against the recorded public key.
    pub signatures_verified: usize,
    /// Older records that kept no public key: their signature could not be checked.
    pub signatures_unchecked: usize,
    pub findings: Vec<Finding>,
}

impl AuditReport {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// The site the passkeys belong to, as the assertions must name it.
pub struct RelyingParty {
    /// `clientDataJSON.origin`.
    pub origin: String,
    /// SHA-256 of the RP id (the public URL's host): the first 32 bytes of authenticatorData.
    pub id_hash: [u8; 32],
}

impl RelyingParty {
    pub fn of(public_url: &url::Url) -> RelyingParty {
        RelyingParty {
            origin: public_url.origin().ascii_serialization(),
            id_hash: sha256(public_url.host_str().unwrap_or_default().as_bytes()),
        }
    }
}

pub async fn verify(store: &Store, rp: &RelyingParty) -> Result<AuditReport, StoreError> {
    let rows = store.decisions().await?;
    let verifier = ArchiveVerifier::load(store).await?;
    let (mut signatures_verified, mut signatures_unchecked) = (0, 0);
    // Once a record keeps its public key every later one must: a missing key is not a way out.
    let mut keys_kept = false;
    let mut findings = Vec::new();
    let mut prev = GENESIS_HASH.to_owned();
    for row in &rows {
        let mut problem = |text: &str| {
            findings.push(Finding {
                seq: Some(row.seq),
                auth_req_id: row.auth_req_id.clone(),
                problem: text.to_owned(),
            });
        };
        if row.prev_hash != prev {
            problem("the chain is broken: prev_hash is not the previous record's hash");
        }
        for seal in seal_problems(row, |jws| verifier.verify(jws)) {
            problem(seal);
        }
        match store.auth_request(&row.auth_req_id).await {
            Err(StoreError::Corrupt(_)) => problem("the decided request cannot be read"),
            Err(e) => return Err(e),
            Ok(Some(request)) => {
                let digest = request_digest(&request);
                if hex(&digest) != row.request_digest {
                    problem("the request has changed since it was decided");
                }
                if !assertion_commits(row, &digest, &rp.origin) {
                    problem(
                        "the passkey assertion does not commit to this decision on this request",
                    );
                }
            }
            Ok(None) => problem("the decided request is missing"),
        }
        match &row.credential_public_key {
            Some(key) => {
                keys_kept = true;
                match assertion_signed(row, key, &rp.id_hash) {
                    Ok(()) => signatures_verified += 1,
                    Err(why) => problem(why),
                }
                match store.registered_key(&row.credential_id).await? {
                    Some((approver_id, registered)) if approver_id == row.approver_id => {
                        if registered != *key {
                            problem("the recorded public key is not the one registered for this passkey");
                        }
                    }
                    Some(_) => problem("the passkey that signed belongs to another approver"),
                    None => problem("the passkey that signed was never registered"),
                }
            }
            None if keys_kept => {
                problem("the record keeps no passkey public key, unlike earlier ones");
            }
            None => signatures_unchecked += 1,
        }
        prev = row.record_hash.clone();
    }
    findings.extend(uncovered(store).await?);
    Ok(AuditReport {
        records: rows.len(),
        signatures_verified,
        signatures_unchecked,
        findings,
    })
}

/// What the decision records do not cover: a decided request or an issued token with no matching
/// record (one UPDATE of a status would otherwise pass unseen), and every approval the token
/// endpoint refused to redeem because it did not verify.
async fn uncovered(store: &Store) -> Result<Vec<Finding>, StoreError> {
    let mut findings = Vec::new();
    let mut finding = |auth_req_id: &str, problem: String| {
        findings.push(Finding {
            seq: None,
            auth_req_id: auth_req_id.to_owned(),
            problem,
        });
    };
    for row in store.decision_coverage().await? {
        let (what, expected) = match row.covered() {
            Covered::Token => ("an access token was issued", "approve"),
            Covered::Denial => ("the request is marked denied", "deny"),
            Covered::Approval => ("the request is marked approved", "approve"),
        };
        match row.decision.as_deref() {
            Some(decision) if decision == expected => {}
            Some(_) => finding(
                &row.auth_req_id,
                format!("{what}, but its decision record says otherwise"),
            ),
            None => finding(
                &row.auth_req_id,
                format!("{what}, but there is no decision record for it"),
            ),
        }
    }
    for (auth_req_id, problem) in store.consent_alerts().await? {
        finding(
            &auth_req_id,
            format!("the token endpoint refused an approval that did not verify: {problem}"),
        );
    }
    Ok(findings)
}

/// WebAuthn §7.2 steps 15–21, offline: the assertion was made for this site with the person present
/// and verified, and the passkey's key signed authenticatorData ‖ SHA-256(clientDataJSON).
fn assertion_signed(
    row: &DecisionRow,
    key: &str,
    rp_id_hash: &[u8; 32],
) -> Result<(), &'static str> {
    let key: COSEKey =
        serde_json::from_str(key).map_err(|_| "the recorded public key is unreadable")?;
    let decode = |field: &str| URL_SAFE_NO_PAD.decode(field);
    let (Ok(auth_data), Ok(client_data), Ok(signature)) = (
        decode(&row.authenticator_data),
        decode(&row.client_data_json),
        decode(&row.signature),
    ) else {
        return Err("the recorded assertion is not base64url");
    };
    if auth_data.len() < 37 {
        return Err("the recorded authenticatorData is too short");
    }
    if auth_data[..32] != rp_id_hash[..] {
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

/// clientDataJSON (signed by the authenticator) must be a `webauthn.get` from this site whose challenge
/// is the decision challenge for this record's decision, request digest and nonce.
fn assertion_commits(row: &DecisionRow, digest: &[u8; 32], origin: &str) -> bool {
    let (Ok(client_data), Ok(nonce)) = (
        URL_SAFE_NO_PAD.decode(&row.client_data_json),
        URL_SAFE_NO_PAD.decode(&row.nonce),
    ) else {
        return false;
    };
    let Ok(client_data) = serde_json::from_slice::<Value>(&client_data) else {
        return false;
    };
    let expected = base64url(&decision_challenge(
        row.decision == "approve",
        digest,
        &nonce,
    ));
    client_data.get("type").and_then(Value::as_str) == Some("webauthn.get")
        && client_data.get("challenge").and_then(Value::as_str) == Some(expected.as_str())
        && client_data.get("origin").and_then(Value::as_str) == Some(origin)
}
