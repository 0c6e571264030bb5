//! What makes a decision evidence: the canonical statement of the exact request, its digest, the passkey
//! challenge that commits to it, and the tamper-evident record (hash chain plus the server's JWS).
//!
//! The approver's authenticator signs `clientDataJSON`, whose `challenge` is
//! SHA-256(tag ‖ decision ‖ request digest ‖ SHA-256(reason) ‖ nonce): the signature therefore covers
//! this one decision, with its reason, on this one request. webauthn-rs always picks its own random challenge, so that random value is used
//! as the nonce and the bound challenge replaces it (see `identity::decisions`).
use serde_json::{json, Map, Value};

use super::{auth_request::AuthRequest, Choice};
use crate::{
    secrets::{base64url, hex, sha256},
    signing::KeyError,
    store::decisions::DecisionRow,
};

/// Version 2 covers the deny reason; version 1 (records made before it) did not.
const CHALLENGE_TAG: &[u8] = b"countersign/decision/v2";
const CHALLENGE_TAG_V1: &[u8] = b"countersign/decision/v1";

/// The JWS `typ` of a decision record's server signature.
pub const RECORD_JWS_TYPE: &str = "countersign-decision+jwt";

/// The claim in access and ID tokens that names the decision record they were minted from (its
/// `record_hash`), so a resource server can ask for the record and check it.
pub const DECISION_CLAIM: &str = "countersign_decision";

/// The claim that lists every approval record (their `record_hash`es, oldest first) of a request
/// a quorum approved.
pub const APPROVALS_CLAIM: &str = "countersign_approvals";

/// RFC 8785 canonical JSON: the same value always gives the same bytes.
pub fn canonical(value: &Value) -> String {
    serde_jcs::to_string(value).expect("JSON values canonicalise")
}

/// The canonical statement of a request: everything the approver's decision covers.
pub fn request_statement(row: &AuthRequest) -> Value {
    let details: Value = serde_json::from_str(&row.authorization_details).unwrap_or(Value::Null);
    let mut statement = json!({
        "auth_req_id": row.id,
        "client_id": row.client_id,
        "approver": row.approver_id,
        "authorization_details": details,
        "binding_message": row.binding_message,
        "scope": row.scope,
        "expires_at": row.expires_at,
    });
    // The key the tokens will be bound to is part of what was approved, so a binding changed in
    // the database afterwards no longer matches the record. Absent, it is left out: the statements
    // of requests without one, and their digests, stay as they were.
    if let Some(jkt) = &row.dpop_jkt {
        statement["dpop_jkt"] = json!(jkt);
    }
    // Likewise who else decides: the group addressed, and the rule in force (a policy's id,
    // version, approvals and group), so no later edit lowers what was agreed to.
    if let Some(group) = &row.group_id {
        statement["group"] = json!(group);
    }
    if let Some(rule) = &row.rule {
        statement["policy"] = serde_json::to_value(rule).expect("a rule serialises");
    }
    statement
}

pub fn request_digest(row: &AuthRequest) -> [u8; 32] {
    sha256(canonical(&request_statement(row)).as_bytes())
}

/// The WebAuthn challenge for making `choice` on the request with `digest`. A denial's reason enters
/// as its hash, with a marker byte so that no reason and an empty one differ.
pub fn decision_challenge(choice: &Choice, digest: &[u8; 32], nonce: &[u8]) -> [u8; 32] {
    let reason = choice.reason();
    let mut input = Vec::with_capacity(CHALLENGE_TAG.len() + 2 + 64 + nonce.len());
    input.extend_from_slice(CHALLENGE_TAG);
    input.push(u8::from(choice.approves()));
    input.extend_from_slice(digest);
    input.push(u8::from(reason.is_some()));
    input.extend_from_slice(&sha256(reason.unwrap_or_default().as_bytes()));
    input.extend_from_slice(nonce);
    sha256(&input)
}

/// The challenge of records made before the reason was covered (audit only).
pub fn decision_challenge_v1(approve: bool, digest: &[u8; 32], nonce: &[u8]) -> [u8; 32] {
    let mut input = Vec::with_capacity(CHALLENGE_TAG_V1.len() + 1 + 32 + nonce.len());
    input.extend_from_slice(CHALLENGE_TAG_V1);
    input.push(u8::from(approve));
    input.extend_from_slice(digest);
    input.extend_from_slice(nonce);
    sha256(&input)
}

pub use crate::identity::verifier::Evidence;

/// The record's content, as hashed and signed: every column but `seq`, `record_hash` and `jws`.
pub fn record_content(row: &DecisionRow) -> Value {
    let mut content = json!({
        "auth_req_id": row.auth_req_id,
        "request_digest": row.request_digest,
        "decision": row.decision,
        "reason": row.reason,
        "approver_id": row.approver_id,
        "credential_id": row.credential_id,
        "authenticator_data": row.authenticator_data,
        "client_data_json": row.client_data_json,
        "signature": row.signature,
        "nonce": row.nonce,
        "decided_at": row.decided_at,
        "prev_hash": row.prev_hash,
    });
    // Present only when kept, so records made before the column existed hash as they always did.
    if let Some(key) = &row.credential_public_key {
        content["credential_public_key"] = Value::String(key.clone());
    }
    if let Some(group) = &row.group_id {
        content["group"] = Value::String(group.clone());
    }
    if let Some(principal) = &row.on_behalf_of {
        content["on_behalf_of"] = Value::String(principal.clone());
    }
    content
}

pub fn record_hash(row: &DecisionRow) -> String {
    hex(&sha256(canonical(&record_content(row)).as_bytes()))
}

/// A new record of `approver_id`'s decision, not yet hashed or signed.
pub fn unsealed(
    request: &AuthRequest,
    approver_id: &str,
    choice: &Choice,
    evidence: &Evidence,
    decided_at: i64,
    prev_hash: &str,
) -> DecisionRow {
    DecisionRow {
        seq: 0,
        auth_req_id: request.id.clone(),
        request_digest: hex(&request_digest(request)),
        decision: if choice.approves() { "approve" } else { "deny" }.into(),
        reason: choice.reason().map(str::to_owned),
        approver_id: approver_id.to_owned(),
        group_id: request.group_id.clone(),
        on_behalf_of: request.on_behalf_of(approver_id).map(str::to_owned),
        credential_id: evidence.credential_id.clone(),
        authenticator_data: base64url(&evidence.authenticator_data),
        client_data_json: base64url(&evidence.client_data_json),
        signature: base64url(&evidence.signature),
        nonce: base64url(&evidence.nonce),
        credential_public_key: Some(evidence.public_key.clone()),
        decided_at,
        prev_hash: prev_hash.to_owned(),
        record_hash: String::new(),
        jws: String::new(),
    }
}

/// What the server can check of a record on its own: that its content matches its hash, and that its
/// JWS (checked by `verify`, which returns the signed claims) covers exactly that content.
pub fn seal_problems(
    row: &DecisionRow,
    verify: impl Fn(&str) -> Result<Map<String, Value>, KeyError>,
) -> Vec<&'static str> {
    let mut problems = Vec::new();
    if record_hash(row) != row.record_hash {
        problems.push("the record's content does not match its hash");
    }
    match verify(&row.jws) {
        Ok(claims) if claims == jws_claims(row) => {}
        Ok(_) => problems.push("the server's signature covers different content"),
        Err(_) => problems.push("the server's signature does not verify"),
    }
    problems
}

/// The approval records of `records` (a request's) if they prove that the request, as stored now,
/// was approved; else why not. Tokens are minted only from sealed approvals of exactly this request
/// by as many distinct addressees as its rule asks for (one without a rule), and no denial. The
/// records come back oldest first; the last completed the approval.
pub fn check_approvals(
    request: &AuthRequest,
    mut records: Vec<DecisionRow>,
    verify: impl Fn(&str) -> Result<Map<String, Value>, KeyError>,
) -> Result<Vec<DecisionRow>, &'static str> {
    if records.is_empty() {
        return Err("the request is marked approved but has no decision record");
    }
    if records.iter().any(|r| r.decision != "approve") {
        return Err("a decision record of the request is a denial");
    }
    records.sort_by_key(|r| r.seq);
    let digest = hex(&request_digest(request));
    let mut people = std::collections::HashSet::new();
    let mut passkeys = std::collections::HashSet::new();
    for record in &records {
        if !request.is_addressed_to(&record.approver_id) {
            return Err("a decision record names someone the request was not addressed to");
        }
        if record.request_digest != digest {
            return Err("the request has changed since it was decided");
        }
        if let Some(problem) = seal_problems(record, &verify).first() {
            return Err(problem);
        }
        people.insert(record.approver_id.as_str());
        passkeys.insert(record.credential_id.as_str());
    }
    let needed = usize::try_from(request.approvals_needed()).unwrap_or(usize::MAX);
    if people.len() < needed || passkeys.len() < needed {
        return Err("fewer distinct people approved than the request's policy asks for");
    }
    Ok(records)
}

/// The JWS payload for a record: its content plus its hash.
pub fn jws_claims(row: &DecisionRow) -> Map<String, Value> {
    let Value::Object(mut claims) = record_content(row) else {
        unreachable!("record content is an object")
    };
    claims.insert("record_hash".into(), Value::String(row.record_hash.clone()));
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_commits_to_decision_reason_request_and_nonce() {
        let digest = [7u8; 32];
        let deny = |reason: Option<&str>| Choice::Deny {
            reason: reason.map(str::to_owned),
        };
        let base = decision_challenge(&deny(None), &digest, b"nonce");
        assert_ne!(
            base,
            decision_challenge(&Choice::Approve, &digest, b"nonce")
        );
        assert_ne!(base, decision_challenge(&deny(Some("")), &digest, b"nonce"));
        assert_ne!(
            base,
            decision_challenge(&deny(Some("late")), &digest, b"nonce")
        );
        assert_ne!(
            decision_challenge(&deny(Some("late")), &digest, b"nonce"),
            decision_challenge(&deny(Some("early")), &digest, b"nonce")
        );
        assert_ne!(base, decision_challenge(&deny(None), &[8u8; 32], b"nonce"));
        assert_ne!(base, decision_challenge(&deny(None), &digest, b"other"));
        assert_ne!(base, decision_challenge_v1(false, &digest, b"nonce"));
        assert_eq!(base, decision_challenge(&deny(None), &digest, b"nonce"));
    }

    #[test]
    fn canonical_json_sorts_keys() {
        assert_eq!(
            canonical(&json!({"b": 1, "a": [true, null]})),
            r#"{"a":[true,null],"b":1}"#
        );
    }
}
