//! The evidence bundle (`countersign audit export`): the decision records, the requests they decided,
//! the passkey key registry, the server's public keys and the latest checkpoint, in one JSON document
//! that anyone can check without this server or its code. The format is specified in
//! `docs/evidence-bundle.md`; `verify/verify-bundle.mjs` is an independent verifier of it.
use serde_json::{json, Map, Value};

use super::{audit::RelyingParty, record::request_statement};
use crate::{
    clock::Millis,
    sealing::Kek,
    signing::ArchiveVerifier,
    store::{
        decisions::{DecisionRow, Selection},
        Store, StoreError,
    },
};

pub const BUNDLE_FORMAT: &str = "countersign-evidence-bundle/1";

/// The bundle for the records `selection` picks (all of them when it is empty).
pub async fn export(
    store: &Store,
    kek: Option<&Kek>,
    rp: &RelyingParty,
    checkpoint: Option<String>,
    selection: &Selection,
    now: Millis,
) -> Result<Value, StoreError> {
    // With the key-encryption key, only keys whose sealed private half matches are listed: a key
    // planted in the database vouches for nothing.
    let verifier = ArchiveVerifier::load(store, kek).await?;
    let registry: Vec<Value> = store
        .key_registry()
        .await?
        .into_iter()
        .map(|e| {
            let mut entry = json!({
                "seq": e.seq, "credential_id": e.credential_id, "approver_id": e.approver_id,
                "public_key": e.public_key, "registered_at": e.registered_at,
                "prev_hash": e.prev_hash, "entry_hash": e.entry_hash, "jws": e.jws,
            });
            // As the entry's hash covers it: the JSON object, present only when recorded.
            if let Some(provenance) = &e.provenance {
                entry["provenance"] = serde_json::from_str(provenance)
                    .unwrap_or_else(|_| Value::String(provenance.clone()));
            }
            entry
        })
        .collect();
    let records = store.decisions_selected(selection).await?;
    let mut requests = Map::new();
    // Where each request stands, and who a shared one was addressed to: what a verifier needs to
    // hold every approved request to the rule its statement names.
    let mut standing = Map::new();
    let mut addressees = Map::new();
    for request in store.requests_decided(selection).await? {
        requests.insert(request.id.clone(), request_statement(&request));
        standing.insert(
            request.id.clone(),
            Value::String(request.state.stage().as_str().to_owned()),
        );
        if request.is_shared() {
            addressees.insert(request.id.clone(), json!(request.addressees));
        }
    }
    Ok(json!({
        "format": BUNDLE_FORMAT,
        "exported_at": now,
        "complete": selection.is_empty(),
        "selection": if selection.is_empty() { Value::Null } else { selection.describe() },
        "relying_party": { "id": rp.id, "origin": rp.origin },
        "server_keys": { "keys": verifier.public_keys },
        "key_registry": registry,
        "records": records.iter().map(record_json).collect::<Vec<_>>(),
        "requests": requests,
        "request_status": standing,
        "addressees": addressees,
        "checkpoint": checkpoint,
    }))
}

/// A record as the bundle holds it: every stored member.
pub fn record_json(record: &DecisionRow) -> Value {
    json!({
        "seq": record.seq,
        "auth_req_id": record.auth_req_id,
        "request_digest": record.request_digest,
        "decision": record.decision,
        "reason": record.reason,
        "approver_id": record.approver_id,
        "group_id": record.group_id,
        "on_behalf_of": record.on_behalf_of,
        "credential_id": record.credential_id,
        "authenticator_data": record.authenticator_data,
        "client_data_json": record.client_data_json,
        "signature": record.signature,
        "nonce": record.nonce,
        "credential_public_key": record.credential_public_key,
        "decided_at": record.decided_at,
        "prev_hash": record.prev_hash,
        "record_hash": record.record_hash,
        "jws": record.jws,
    })
}
