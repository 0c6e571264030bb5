//! Sealing what versions before sealing stored in plain text: the signing keys, the VAPID key, and
//! the passkey keys from before the key registry. A start never does this by itself (it refuses, and
//! says to run this): sealing whatever the database holds would vouch for keys a database writer put
//! there. `countersign keys seal-legacy` is the operator saying the database is their own, once.
use std::sync::Arc;

use crate::{
    clock::Millis, identity::registry::KeyRegistry, notify::push, sealing::Kek, signing,
    store::Store,
};

/// What `seal_legacy` sealed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sealed {
    pub signing_keys: usize,
    pub vapid_key: bool,
    pub passkey_keys: usize,
}

/// Seals the plain signing keys (when none is sealed yet), a plain VAPID key, and the passkey keys
/// of a database from before the key registry (when the registry is empty), in that order: the
/// registry's entries are signed with the signing keys.
pub async fn seal_legacy(store: &Store, kek: Arc<Kek>, now: Millis) -> anyhow::Result<Sealed> {
    let signing_keys = signing::seal_plain_keys(store, &kek).await?;
    let vapid_key = push::seal_plain_vapid_key(store, &kek).await?;
    let keys = Arc::new(signing::KeyRing::load(store.clone(), kek, 0, now).await?);
    let passkey_keys = KeyRegistry::new(store.clone(), keys)
        .seal_earlier_keys()
        .await?;
    Ok(Sealed {
        signing_keys,
        vapid_key,
        passkey_keys,
    })
}
