//! Random identifiers and secrets, and their hashes. Secrets here carry at least 256 bits of entropy, so
//! a single SHA-256 is a sound verifier (no password stretching needed) and keeps the hot path fast.
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `bytes` random bytes from the thread-local CSPRNG, base64url-encoded.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A random identifier (128 bits, lower-case hex): safe in URLs, file names and command lines.
pub fn random_id() -> String {
    hex(&random_bytes::<16>())
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    rand::rng().fill_bytes(&mut buf);
    buf
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The stored verifier of a high-entropy secret: hex SHA-256.
pub fn hash_secret(secret: &str) -> String {
    hex(&sha256(secret.as_bytes()))
}

/// Compares `secret` with a stored digest in constant time.
pub fn secret_matches(secret: &str, digest: &[u8; 32]) -> bool {
    sha256(secret.as_bytes()).ct_eq(digest).into()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
}

/// Parses a `hash_secret` value back into its digest.
pub fn parse_digest(hex_digest: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    ::hex::decode_to_slice(hex_digest, &mut out).ok()?;
    Some(out)
}

pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_verify_only_against_their_own_hash() {
        let secret = random_token(32);
        assert_eq!(
            secret.len(),
            43,
            "32 bytes = 256 bits, base64url without padding"
        );
        let stored = parse_digest(&hash_secret(&secret)).unwrap();
        assert!(secret_matches(&secret, &stored));
        assert!(!secret_matches(&random_token(32), &stored));
        assert!(!secret_matches("", &stored));
        assert_eq!(parse_digest("zz"), None);
    }
}
