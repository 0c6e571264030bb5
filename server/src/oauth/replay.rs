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

#[derive(Default)]
pub struct ReplayCache {
    seen: Mutex<HashMap<String, Millis>>,
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

    /// True the first time `key` is presented before `expires_at`; false for every repeat.
    pub fn first_use(&self, key: &str, expires_at: Millis, now: Millis) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > 10_000 {
            seen.retain(|_, exp| *exp > now);
        }
        match seen.get(key) {
            Some(exp) if *exp > now => false,
            _ => {
                seen.insert(key.to_owned(), expires_at);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
