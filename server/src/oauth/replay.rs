//! Remembers the `jti` of client-signed JWTs until they expire, so none is accepted twice (RFC 7523 §3
//! item 7; CIBA §7.1.1 for signed requests). In memory: with several instances, a replay to another
//! instance within the JWT's short lifetime is not caught, which the short `exp` bounds.
use std::{collections::HashMap, sync::Mutex};

use crate::clock::Millis;

/// Why a client-signed JWT was refused by the replay check.
#[derive(Debug, PartialEq, Eq)]
pub enum Replay {
    MissingJti,
    Repeated,
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
    /// Accepts the JWT `claims` of `client_id` once: its `jti` is remembered (per `purpose`) until its
    /// `exp`.
    pub fn accept_once(
        &self,
        purpose: &str,
        client_id: &str,
        claims: &serde_json::Map<String, serde_json::Value>,
        now: Millis,
    ) -> Result<(), Replay> {
        let jti = claims
            .get("jti")
            .and_then(serde_json::Value::as_str)
            .ok_or(Replay::MissingJti)?;
        let exp = claims
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or_default()
            * 1000;
        if self.first_use(&format!("{purpose}:{client_id}:{jti}"), exp, now) {
            Ok(())
        } else {
            Err(Replay::Repeated)
        }
    }

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
