//! Remembers the `jti`s of JWTs accepted once, until they expire, so none is accepted twice: client
//! assertions and signed requests in the database, for every instance (RFC 7523 §3 item 7; CIBA
//! §7.1.1), and DPoP proofs in memory (see `oauth::dpop` for why that suffices).
use std::{collections::HashMap, sync::Mutex};

use crate::{
    clock::Millis,
    secrets::{hex, sha256},
    store::Store,
};

/// Why a client-signed JWT was refused by the replay check.
#[derive(Debug, PartialEq, Eq)]
pub enum Replay {
    MissingJti,
    Repeated,
    /// The database could not be asked.
    Unavailable(String),
}

/// The longest `jti` accepted (RFC 9449 uses the same bound for DPoP proofs).
const MAX_JTI_CHARS: usize = 256;

/// Once-only client JWTs (client assertions and signed requests), remembered in the database so that
/// one used at any instance is refused at every other until it expires. One record for all uses: a
/// JWT accepted as a signed request cannot then pass as a client assertion.
pub struct UsedJwts {
    store: Store,
}

impl UsedJwts {
    pub fn new(store: Store) -> UsedJwts {
        UsedJwts { store }
    }

    /// Accepts the verified `claims` of a once-only JWT from `client_id` once. `exp` was checked to be
    /// at most minutes away (`JwtUse`), so the record is short-lived.
    pub async fn accept_once(
        &self,
        client_id: &str,
        claims: &serde_json::Map<String, serde_json::Value>,
        now: Millis,
    ) -> Result<(), Replay> {
        let jti = claims
            .get("jti")
            .and_then(serde_json::Value::as_str)
            .filter(|jti| !jti.is_empty() && jti.chars().count() <= MAX_JTI_CHARS)
            .ok_or(Replay::MissingJti)?;
        let exp_ms = claims
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or_default()
            .saturating_mul(1000);
        // A digest: the key is a fixed size whatever the jti, and names neither.
        let key = hex(&sha256(format!("{client_id}\n{jti}").as_bytes()));
        match self.store.first_use(&key, exp_ms, now).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Replay::Repeated),
            Err(e) => Err(Replay::Unavailable(e.to_string())),
        }
    }
}

/// Past this many remembered keys, expired ones are dropped, at most once a second.
const SWEEP_AT: usize = 10_000;
/// The most keys remembered at once.
const MAX_REMEMBERED: usize = 100_000;

#[derive(Default)]
pub struct ReplayCache {
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// Key → when it may be forgotten.
    keys: HashMap<String, Millis>,
    swept_at: Option<Millis>,
}

impl ReplayCache {
    /// True the first time `key` is presented before `expires_at`; false for every repeat. The memory
    /// is bounded: when it is full of unexpired keys, new ones are refused too until some expire (a
    /// client can retry with a fresh JWT; a forgotten key could be replayed).
    pub fn first_use(&self, key: &str, expires_at: Millis, now: Millis) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.keys.len() >= SWEEP_AT && seen.swept_at.is_none_or(|at| now - at >= 1_000) {
            seen.keys.retain(|_, exp| *exp > now);
            seen.swept_at = Some(now);
        }
        if seen.keys.get(key).is_some_and(|exp| *exp > now) {
            return false;
        }
        if seen.keys.len() >= MAX_REMEMBERED {
            tracing::warn!(
                "the replay cache is full; refusing client-signed JWTs until some expire"
            );
            return false;
        }
        seen.keys.insert(key.to_owned(), expires_at);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_is_bounded_and_refuses_rather_than_forgets() {
        let cache = ReplayCache::default();
        for i in 0..MAX_REMEMBERED {
            assert!(cache.first_use(&i.to_string(), 10_000, 0));
        }
        assert!(!cache.first_use("one more", 10_000, 0), "full of live keys");
        assert!(!cache.first_use("0", 10_000, 1), "still remembered");
        assert!(
            cache.first_use("later", 20_000, 10_000),
            "the expired ones made room"
        );
        assert_eq!(cache.seen.lock().unwrap().keys.len(), 1);
    }

    #[test]
    fn a_jti_is_accepted_once_until_it_expires() {
        let cache = ReplayCache::default();
        assert!(cache.first_use("c:1", 1_000, 0));
        assert!(!cache.first_use("c:1", 1_000, 500));
        assert!(cache.first_use("c:2", 1_000, 500));
        assert!(
            cache.first_use("c:1", 2_000, 1_000),
            "expired entries no longer block"
        );
    }
}
