//! The passkey key registry: every public key an approver registered, as a chain of entries, each
//! hashed with the previous entry's hash and signed by the server (JWS `typ`
//! `countersign-passkey-key+jwt`). A passkey signs in or decides only when its registry entry is sealed,
//! names its approver and holds its public key: a passkey written into the database by hand (which
//! would otherwise let whoever holds its private key approve as anyone) is refused, since sealing
//! needs the signing key, which the database holds only sealed (see `sealing`). `audit verify` walks
//! the chain; the checkpoints outside the database fix its head.
use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use serde_json::{json, Map, Value};
use webauthn_rs::prelude::Passkey;

use super::{passkeys::public_key_json, provenance::Provenance};
use crate::{
    clock::Millis,
    secrets::{hex, sha256},
    signing::{KeyError, KeyRing},
    store::{
        key_registry::{KeyEntryRow, KeySeal},
        Store, StoreError, StoreResult,
    },
};

/// The JWS `typ` of a registry entry's server signature.
pub const ENTRY_JWS_TYPE: &str = "countersign-passkey-key+jwt";

/// A key to register.
pub struct NewKey<'a> {
    pub credential_id: &'a str,
    pub approver_id: &'a str,
    /// webauthn-rs's COSEKey as JSON (`public_key_json`).
    pub public_key: &'a str,
    pub registered_at: Millis,
    /// How it arrived; None only for keys sealed from before provenance was recorded.
    pub provenance: Option<&'a Provenance>,
}

/// An entry's content, as hashed and signed: every column but `seq`, `entry_hash` and `jws`.
/// The provenance enters as its JSON object, and only when recorded, so entries sealed before it was
/// kept keep their hashes; one whose stored text is not JSON enters as that text and matches nothing.
fn entry_content(row: &KeyEntryRow) -> Value {
    let mut content = json!({
        "credential_id": row.credential_id,
        "approver_id": row.approver_id,
        "public_key": row.public_key,
        "registered_at": row.registered_at,
        "prev_hash": row.prev_hash,
    });
    if let Some(provenance) = &row.provenance {
        content["provenance"] =
            serde_json::from_str(provenance).unwrap_or_else(|_| Value::String(provenance.clone()));
    }
    content
}

/// The entry's provenance, if it records one that reads.
pub fn provenance(row: &KeyEntryRow) -> Option<Provenance> {
    serde_json::from_str(row.provenance.as_deref()?).ok()
}

pub fn entry_hash(row: &KeyEntryRow) -> String {
    hex(&sha256(
        crate::ciba::record::canonical(&entry_content(row)).as_bytes(),
    ))
}

fn jws_claims(row: &KeyEntryRow) -> Map<String, Value> {
    let Value::Object(mut claims) = entry_content(row) else {
        unreachable!("entry content is an object")
    };
    claims.insert("entry_hash".into(), Value::String(row.entry_hash.clone()));
    claims
}

/// The entry for `key` after the entry whose hash is `prev_hash`, hashed and signed.
pub fn seal(keys: &KeyRing, key: &NewKey<'_>, prev_hash: &str) -> StoreResult<KeyEntryRow> {
    let mut row = KeyEntryRow {
        seq: 0,
        credential_id: key.credential_id.to_owned(),
        approver_id: key.approver_id.to_owned(),
        public_key: key.public_key.to_owned(),
        registered_at: key.registered_at,
        provenance: key
            .provenance
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Unavailable(format!("encoding the key's provenance: {e}")))?,
        prev_hash: prev_hash.to_owned(),
        entry_hash: String::new(),
        jws: String::new(),
    };
    row.entry_hash = entry_hash(&row);
    row.jws = keys
        .sign(ENTRY_JWS_TYPE, jws_claims(&row))
        .map_err(|e| StoreError::Unavailable(format!("signing the key registry entry: {e}")))?;
    Ok(row)
}

/// What is wrong with one entry on its own: its hash, and its JWS (checked by `verify`).
pub fn entry_problems(
    row: &KeyEntryRow,
    verify: impl Fn(&str) -> Result<Map<String, Value>, KeyError>,
) -> Option<&'static str> {
    if entry_hash(row) != row.entry_hash {
        return Some("the entry's content does not match its hash");
    }
    match verify(&row.jws) {
        Ok(claims) if claims == jws_claims(row) => None,
        Ok(_) => Some("the server's signature covers different content"),
        Err(_) => Some("the server's signature does not verify"),
    }
}

/// The registry as the running server consults it. Entries never change, so one that verified is
/// remembered.
pub struct KeyRegistry {
    store: Store,
    keys: Arc<KeyRing>,
    /// credential id → (approver id, public key) of entries that verified.
    trusted: RwLock<HashMap<String, (String, String)>>,
}

impl KeyRegistry {
    pub fn new(store: Store, keys: Arc<KeyRing>) -> KeyRegistry {
        KeyRegistry {
            store,
            keys,
            trusted: RwLock::default(),
        }
    }

    /// Seals `key` against the head the store passes in.
    pub fn sealer<'a>(
        &'a self,
        key: &'a NewKey<'a>,
    ) -> impl Fn(&str) -> StoreResult<KeyEntryRow> + Send + Sync + 'a {
        move |prev_hash: &str| seal(&self.keys, key, prev_hash)
    }

    /// Registers a key on its own; `StoreError::Conflict` if its credential is registered already.
    pub async fn register(&self, key: &NewKey<'_>) -> StoreResult<()> {
        self.store.append_key_entry(&self.sealer(key)).await
    }

    /// Whether `public_key` is registered, sealed, for `credential_id` and `approver_id`.
    pub async fn is_registered(
        &self,
        credential_id: &str,
        approver_id: &str,
        public_key: &str,
    ) -> StoreResult<bool> {
        let remembered = self
            .trusted
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(credential_id)
            .cloned();
        let (owner, key) = match remembered {
            Some(entry) => entry,
            None => {
                let Some(row) = self.store.key_entry(credential_id).await? else {
                    return Ok(false);
                };
                if let Some(problem) = entry_problems(&row, |jws| self.keys.verify_record(jws)) {
                    tracing::error!(credential_id, problem, "key registry entry refused");
                    return Ok(false);
                }
                let entry = (row.approver_id, row.public_key);
                self.trusted
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(credential_id.to_owned(), entry.clone());
                entry
            }
        };
        Ok(owner == approver_id && key == public_key)
    }

    /// The provenance a sound entry records for `credential_id` (None: no sound entry, or one sealed
    /// before provenance was recorded).
    pub async fn provenance(&self, credential_id: &str) -> StoreResult<Option<Provenance>> {
        let Some(row) = self.store.key_entry(credential_id).await? else {
            return Ok(None);
        };
        if entry_problems(&row, |jws| self.keys.verify_record(jws)).is_some() {
            return Ok(None);
        }
        Ok(provenance(&row))
    }

    /// Whether this stored passkey may sign: registered, sealed, with the key it holds.
    pub async fn admits(
        &self,
        credential_id: &str,
        approver_id: &str,
        passkey: &Passkey,
    ) -> StoreResult<bool> {
        let Ok(public_key) = public_key_json(passkey) else {
            return Ok(false);
        };
        let registered = self
            .is_registered(credential_id, approver_id, &public_key)
            .await?;
        if !registered {
            tracing::error!(
                credential_id,
                approver_id,
                "a passkey without a sealed key registry entry was refused (written into the database by hand?)"
            );
        }
        Ok(registered)
    }

    /// At start: an empty registry beside passkeys means a database from before the registry, or
    /// one whose registry was emptied from below. Either way the server does not seal what the
    /// database holds on its own (that would vouch for planted keys); the operator decides, with
    /// `countersign keys seal-legacy`.
    pub async fn refuse_unsealed_keys(&self) -> anyhow::Result<()> {
        if self.store.key_registry_len().await? > 0 {
            return Ok(());
        }
        let unsealed = self.store.unsealed_keys().await?.len();
        if unsealed > 0 {
            anyhow::bail!(
                "the key registry is empty, yet the database holds {unsealed} passkey keys: this database \
                 comes from a version before the registry, or its registry was emptied. If it is the \
                 former, run `countersign keys seal-legacy` once; otherwise restore the database."
            );
        }
        Ok(())
    }

    /// Once, when the registry is still empty: seals the keys registered before it was a chain (the
    /// unsealed `passkey_keys`, and passkeys older than that) into it, oldest first. Only
    /// `countersign keys seal-legacy` calls this (`legacy`).
    pub async fn seal_earlier_keys(&self) -> anyhow::Result<usize> {
        if self.store.key_registry_len().await? > 0 {
            return Ok(0);
        }
        let mut keys = Vec::new();
        for (credential_id, approver_id, stored, registered_at, whole) in
            self.store.unsealed_keys().await?
        {
            let public_key = if whole {
                public_key_json(&serde_json::from_str::<Passkey>(&stored)?)?
            } else {
                stored
            };
            keys.push((credential_id, approver_id, public_key, registered_at));
        }
        let new: Vec<NewKey<'_>> = keys
            .iter()
            .map(|(c, a, k, at)| NewKey {
                credential_id: c,
                approver_id: a,
                public_key: k,
                registered_at: *at,
                provenance: None,
            })
            .collect();
        let sealers: Vec<_> = new.iter().map(|key| self.sealer(key)).collect();
        let seals: Vec<KeySeal<'_>> = sealers.iter().map(|s| s as KeySeal<'_>).collect();
        let sealed = self.store.seal_unsealed_keys(&seals).await?;
        if sealed > 0 {
            tracing::info!(sealed, "earlier passkey keys sealed into the key registry");
        }
        Ok(sealed)
    }
}
