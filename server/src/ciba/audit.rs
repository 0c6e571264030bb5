//! Re-verifying the decision record (`countersign audit verify`): the hash chain, the server's JWS on
//! each record, that each request is still the one decided on, and that each passkey assertion's
//! challenge commits to exactly that decision.
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::Serialize;
use serde_json::Value;

use super::record::{decision_challenge, jws_claims, record_hash, request_digest};
use crate::{
    secrets::{base64url, hex},
    signing::ArchiveVerifier,
    store::{decisions::GENESIS_HASH, Store, StoreError},
};

#[derive(Debug, Serialize)]
pub struct Finding {
    pub seq: i64,
    pub auth_req_id: String,
    pub problem: String,
}

#[derive(Debug, Serialize)]
pub struct AuditReport {
    pub records: usize,
    pub findings: Vec<Finding>,
}

impl AuditReport {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

pub async fn verify(store: &Store) -> Result<AuditReport, StoreError> {
    let rows = store.decisions().await?;
    let verifier = ArchiveVerifier::load(store).await?;
    let mut findings = Vec::new();
    let mut prev = GENESIS_HASH.to_owned();
    for row in &rows {
        let mut problem = |text: &str| {
            findings.push(Finding {
                seq: row.seq,
                auth_req_id: row.auth_req_id.clone(),
                problem: text.to_owned(),
            })
        };
        if row.prev_hash != prev {
            problem("the chain is broken: prev_hash is not the previous record's hash");
        }
        if record_hash(row) != row.record_hash {
            problem("the record's content does not match its hash");
        }
        match verifier.verify(&row.jws) {
            Ok(claims) if claims == jws_claims(row) => {}
            Ok(_) => problem("the server's signature covers different content"),
            Err(_) => problem("the server's signature does not verify"),
        }
        match store.auth_request(&row.auth_req_id).await? {
            Some(request) => {
                let digest = request_digest(&request);
                if hex(&digest) != row.request_digest {
                    problem("the request has changed since it was decided");
                }
                if !assertion_commits(row, &digest) {
                    problem(
                        "the passkey assertion does not commit to this decision on this request",
                    );
                }
            }
            None => problem("the decided request is missing"),
        }
        prev = row.record_hash.clone();
    }
    Ok(AuditReport {
        records: rows.len(),
        findings,
    })
}

/// clientDataJSON (signed by the authenticator) must be a `webauthn.get` whose challenge is the
/// decision challenge for this record's decision, request digest and nonce.
fn assertion_commits(row: &crate::store::decisions::DecisionRow, digest: &[u8; 32]) -> bool {
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
}
