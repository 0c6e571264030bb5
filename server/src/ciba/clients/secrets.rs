//! Client secrets as the database keeps them: `hmac-sha256:` and an HMAC, under a key derived from the
//! key-encryption key, of the secret's SHA-256. A database writer who puts a digest of a secret they
//! chose into a client's row cannot compute this one, so they cannot authenticate as the client. The
//! HMAC is over the SHA-256 so that an earlier version's digest (plain hex SHA-256) can be converted
//! without the secret, by `countersign keys seal-legacy` only: a start never vouches for what the
//! database holds. Until then such a client is refused, and the server says why.
use subtle::ConstantTimeEq;

use crate::{
    sealing::{BearerDigests, Kek},
    secrets::{hash_secret, parse_digest, sha256},
};

/// The prefix of a keyed digest.
const KEYED: &str = "hmac-sha256:";
/// What the digest is of, for `BearerDigests`.
const KIND: &str = "client-secret";

/// A client's stored secret, as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredSecret {
    Keyed([u8; 32]),
    /// An earlier version's unkeyed SHA-256: refused until converted.
    Unkeyed,
    /// Anything else: refused.
    Malformed,
}

impl StoredSecret {
    pub fn parse(stored: &str) -> StoredSecret {
        match stored.strip_prefix(KEYED) {
            Some(keyed) => parse_digest(keyed).map_or(StoredSecret::Malformed, StoredSecret::Keyed),
            None if parse_digest(stored).is_some() => StoredSecret::Unkeyed,
            None => StoredSecret::Malformed,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ClientSecrets {
    digests: BearerDigests,
}

impl ClientSecrets {
    pub fn new(kek: &Kek) -> ClientSecrets {
        ClientSecrets {
            digests: BearerDigests::new(kek),
        }
    }

    /// What the database stores for `secret`.
    pub fn stored(&self, secret: &str) -> String {
        self.keyed(&hash_secret(secret))
    }

    /// Whether `secret` is the one `stored` was made from, in constant time. On every agent call,
    /// so nothing here allocates.
    pub fn matches(&self, stored: &[u8; 32], secret: &str) -> bool {
        let mut unkeyed = [0u8; 64];
        hex::encode_to_slice(sha256(secret.as_bytes()), &mut unkeyed)
            .expect("32 bytes are 64 hex digits");
        self.digests.of_bytes(KIND, &unkeyed).ct_eq(stored).into()
    }

    /// The keyed digest of the same secret as an earlier version's unkeyed one; None for anything
    /// that is not one.
    pub fn convert(&self, stored: &str) -> Option<String> {
        (StoredSecret::parse(stored) == StoredSecret::Unkeyed).then(|| self.keyed(stored))
    }

    fn keyed(&self, unkeyed_hex: &str) -> String {
        format!("{KEYED}{}", self.digests.of(KIND, unkeyed_hex))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_matches_only_its_keyed_digest_under_this_key() {
        let secrets = ClientSecrets::new(&Kek::from_bytes([1; 32]));
        let stored = secrets.stored("s3cret");
        let StoredSecret::Keyed(digest) = StoredSecret::parse(&stored) else {
            panic!("{stored}");
        };
        assert!(secrets.matches(&digest, "s3cret"));
        assert!(!secrets.matches(&digest, "s3cret "));
        let elsewhere = ClientSecrets::new(&Kek::from_bytes([2; 32]));
        assert!(!elsewhere.matches(&digest, "s3cret"));
        // What a database writer could compute is no keyed digest.
        let unkeyed = hash_secret("s3cret");
        assert_eq!(StoredSecret::parse(&unkeyed), StoredSecret::Unkeyed);
        assert_eq!(
            StoredSecret::parse(&format!("hmac-sha256:{unkeyed}")),
            StoredSecret::Keyed(parse_digest(&unkeyed).unwrap())
        );
        assert!(!secrets.matches(&parse_digest(&unkeyed).unwrap(), "s3cret"));
        assert_eq!(
            StoredSecret::parse("hmac-sha256:zz"),
            StoredSecret::Malformed
        );
        // An earlier version's digest converts to the same keyed digest, without the secret.
        assert_eq!(secrets.convert(&unkeyed).as_deref(), Some(stored.as_str()));
        assert_eq!(secrets.convert(&stored), None, "converted once");
    }
}
