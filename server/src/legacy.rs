//! Sealing what versions before sealing stored in plain text: the signing keys, the VAPID key, the
//! passkey keys from before the key registry, and client secrets' unkeyed digests. A start never does this by itself (it refuses, and
//! says to run this): sealing whatever the database holds would vouch for keys a database writer put
//! there. `countersign keys seal-legacy` is the operator saying the database is their own, once.
use std::sync::Arc;

use crate::{
    ciba::clients::{ClientSecrets, StoredSecret},
    clock::Millis,
    identity::registry::KeyRegistry,
    notify::push,
    sealing::Kek,
    signing,
    store::Store,
};

/// What `seal_legacy` sealed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sealed {
    pub signing_keys: usize,
    pub vapid_key: bool,
    pub passkey_keys: usize,
    pub client_secrets: usize,
}

/// Seals the plain signing keys (when none is sealed yet), a plain VAPID key, and the passkey keys
/// of a database from before the key registry (when the registry is empty), in that order: the
/// registry's entries are signed with the signing keys.
pub async fn seal_legacy(store: &Store, kek: Arc<Kek>, now: Millis) -> anyhow::Result<Sealed> {
    let signing_keys = signing::seal_plain_keys(store, &kek).await?;
    let vapid_key = push::seal_plain_vapid_key(store, &kek).await?;
    let secrets = ClientSecrets::new(&kek);
    let keys = Arc::new(signing::KeyRing::load(store.clone(), kek, 0, now).await?);
    let passkey_keys = KeyRegistry::new(store.clone(), keys)
        .seal_earlier_keys()
        .await?;
    let client_secrets = key_client_secrets(store, &secrets, now).await?;
    Ok(Sealed {
        signing_keys,
        vapid_key,
        passkey_keys,
        client_secrets,
    })
}

/// Converts the client secrets an earlier version stored as plain SHA-256 into keyed digests.
async fn key_client_secrets(
    store: &Store,
    secrets: &ClientSecrets,
    now: Millis,
) -> anyhow::Result<usize> {
    let mut converted = 0;
    for row in store.clients().await? {
        if let Some(keyed) = row.secret_hash.as_deref().and_then(|s| secrets.convert(s)) {
            store.set_client_secret_hash(&row.id, &keyed, now).await?;
            converted += 1;
        }
    }
    Ok(converted)
}

/// Clients whose secret an earlier version stored unkeyed: refused until `seal_legacy` converts them.
pub async fn unkeyed_client_secrets(store: &Store) -> anyhow::Result<Vec<String>> {
    Ok(store
        .clients()
        .await?
        .into_iter()
        .filter(|row| {
            row.secret_hash
                .as_deref()
                .is_some_and(|s| StoredSecret::parse(s) == StoredSecret::Unkeyed)
        })
        .map(|row| row.id)
        .collect())
}
