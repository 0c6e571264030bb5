//! The server's private keys (token signing, VAPID) are stored sealed: AES-256-GCM under a
//! key-encryption key (KEK) that never enters the database. A copy of the database alone therefore
//! mints no tokens. The KEK comes from `COUNTERSIGN_KEY` (base64url, 32 bytes) or from a file
//! (`COUNTERSIGN_KEY_FILE`, by default next to the SQLite database) created with mode 0600 on first
//! use. Each sealed value names what it is (the associated data), so one row's ciphertext cannot be
//! moved into another row.
use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

use aes_gcm::{
    aead::{Aead, KeyInit, Payload},
    Aes256Gcm, Key, Nonce,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::secrets::random_bytes;

/// The prefix of a sealed value: format version 1 is `nonce (12 bytes) ‖ ciphertext ‖ tag`, base64url.
const SEALED_V1: &str = "sealed:v1:";
/// The environment variable that may hold the KEK itself (base64url of 32 bytes).
pub const KEK_ENV: &str = "COUNTERSIGN_KEY";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the value is stored in plain text")]
    Plain,
    #[error("the value is not sealed by this server's key-encryption key (or was altered)")]
    WrongKey,
}

/// Where the KEK comes from.
#[derive(Clone, Debug)]
pub enum KekSource {
    /// The key itself, base64url (from `COUNTERSIGN_KEY`).
    Inline(String),
    /// A file holding it; created with a new random key when missing.
    File(PathBuf),
}

impl KekSource {
    /// `COUNTERSIGN_KEY` when set, else `file`.
    pub fn from_env_or(file: PathBuf) -> KekSource {
        match std::env::var(KEK_ENV) {
            Ok(key) if !key.trim().is_empty() => KekSource::Inline(key),
            _ => KekSource::File(file),
        }
    }
}

pub struct Kek {
    cipher: Aes256Gcm,
    /// HKDF over the same key, for keys with other purposes (each named by its HKDF info).
    derive: Hkdf<Sha256>,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(…)")
    }
}

impl Kek {
    pub fn load(source: &KekSource) -> anyhow::Result<Kek> {
        let encoded = match source {
            KekSource::Inline(key) => key.trim().to_owned(),
            KekSource::File(path) => read_or_create(path)?,
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the key-encryption key ({}) is not 32 bytes of base64url",
                    source.describe()
                )
            })?;
        Ok(Kek::from_bytes(bytes))
    }

    /// The KEK if one exists (the variable is set or the file is there); never creates a file. For
    /// tools that only read, such as the audit.
    pub fn load_existing(source: &KekSource) -> anyhow::Result<Option<Kek>> {
        match source {
            KekSource::File(path) if !path.exists() => Ok(None),
            source => Kek::load(source).map(Some),
        }
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Kek {
        Kek {
            cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(bytes)),
            derive: Hkdf::new(None, &bytes),
        }
    }

    /// A 256-bit key for `purpose` (RFC 5869 HKDF-SHA256, the purpose as info): every instance that
    /// shares this KEK derives the same one, and no derived key reveals the KEK or another purpose's.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut key = [0; 32];
        self.derive
            .expand(purpose.as_bytes(), &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        key
    }

    /// A fresh random key, base64url: what a new key file holds.
    pub fn generate() -> String {
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    }

    /// Seals `plain`; `label` names the value (table and row) and must be given again to open it.
    pub fn seal(&self, label: &str, plain: &str) -> String {
        let nonce = random_bytes::<12>();
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: label.as_bytes(),
                },
            )
            .expect("AES-GCM seals any value shorter than 64 GiB");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{SEALED_V1}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a value sealed under `label`.
    pub fn open(&self, label: &str, stored: &str) -> Result<String, SealError> {
        let encoded = stored.strip_prefix(SEALED_V1).ok_or(SealError::Plain)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| SealError::WrongKey)?;
        if bytes.len() < 12 + 16 {
            return Err(SealError::WrongKey);
        }
        let (nonce, sealed) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().expect("split at 12");
        let plain = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: label.as_bytes(),
                },
            )
            .map_err(|_| SealError::WrongKey)?;
        String::from_utf8(plain).map_err(|_| SealError::WrongKey)
    }
}

/// Digests of bearer secrets (session ids, invitation tokens) as the database stores them: HMAC-SHA256
/// under a key derived from the key-encryption key, so a database writer can neither compute the row of
/// a session id they chose nor plant an invitation whose token they know. `kind` separates the uses.
#[derive(Clone)]
pub struct BearerDigests {
    /// Keyed once: each digest clones it rather than running the key schedule again (agents'
    /// secrets are checked on every poll).
    mac: hmac::Hmac<Sha256>,
}

impl std::fmt::Debug for BearerDigests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerDigests(..)")
    }
}

impl BearerDigests {
    pub fn new(kek: &Kek) -> BearerDigests {
        use hmac::Mac;
        let key = kek.derive("countersign/bearer-digests/v1");
        BearerDigests {
            mac: hmac::Hmac::<Sha256>::new_from_slice(&key)
                .expect("HMAC takes a key of any length"),
        }
    }

    /// Lower-case hex HMAC-SHA256 of `kind` ‖ 0x00 ‖ `secret`.
    pub fn of(&self, kind: &str, secret: &str) -> String {
        crate::secrets::hex(&self.of_bytes(kind, secret.as_bytes()))
    }

    /// HMAC-SHA256 of `kind` ‖ 0x00 ‖ `secret`.
    pub fn of_bytes(&self, kind: &str, secret: &[u8]) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = self.mac.clone();
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(secret);
        mac.finalize().into_bytes().into()
    }
}

pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_V1)
}

impl KekSource {
    fn describe(&self) -> String {
        match self {
            KekSource::Inline(_) => KEK_ENV.to_owned(),
            KekSource::File(path) => path.display().to_string(),
        }
    }
}

/// Reads the key file, or creates it (mode 0600, never overwriting) with a new random key.
fn read_or_create(path: &Path) -> anyhow::Result<String> {
    match fs::read_to_string(path) {
        Ok(key) => {
            warn_if_readable_by_others(path);
            return Ok(key);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot read the key file {}: {e}", path.display()),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::private_files::create_dir_all(dir)?;
    }
    let key = Kek::generate();
    match crate::private_files::options()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut file) => {
            file.write_all(key.as_bytes())?;
            file.sync_all()?;
            tracing::info!(path = %path.display(), "created the key-encryption key file: back it up apart from the database");
            Ok(key)
        }
        // Another process made it meanwhile: use theirs.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(fs::read_to_string(path)?),
        Err(e) => anyhow::bail!("cannot create the key file {}: {e}", path.display()),
    }
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    if let Ok(meta) = fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "the key file is readable by other users: chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_label() {
        let kek = Kek::from_bytes([1; 32]);
        let sealed = kek.seal("signing_keys/a", "secret");
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("secret"));
        assert_eq!(kek.open("signing_keys/a", &sealed).unwrap(), "secret");
        assert!(matches!(
            kek.open("signing_keys/b", &sealed),
            Err(SealError::WrongKey)
        ));
        assert!(matches!(
            Kek::from_bytes([2; 32]).open("signing_keys/a", &sealed),
            Err(SealError::WrongKey)
        ));
        assert!(matches!(
            kek.open("signing_keys/a", "secret"),
            Err(SealError::Plain)
        ));
        assert_ne!(sealed, kek.seal("signing_keys/a", "secret"), "fresh nonce");
    }

    #[test]
    fn bearer_digests_depend_on_the_key_and_the_kind() {
        let digests = BearerDigests::new(&Kek::from_bytes([1; 32]));
        let digest = digests.of("session", "abc");
        assert_eq!(digest.len(), 64);
        assert_eq!(digest, digests.of("session", "abc"));
        assert_ne!(digest, digests.of("invitation", "abc"));
        assert_ne!(digest, digests.of("session", "abd"));
        assert_ne!(
            digest,
            BearerDigests::new(&Kek::from_bytes([2; 32])).of("session", "abc")
        );
        assert_ne!(
            digest,
            crate::secrets::hash_secret("abc"),
            "not a plain hash"
        );
    }

    #[test]
    fn the_key_file_is_created_private_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/countersign.key");
        let source = KekSource::File(path.clone());
        let first = Kek::load(&source).unwrap().seal("x", "v");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(Kek::load(&source).unwrap().open("x", &first).unwrap(), "v");
        fs::write(&path, "short").unwrap();
        let error = Kek::load(&source).unwrap_err().to_string();
        assert!(error.contains("not 32 bytes"), "{error}");
    }
}
