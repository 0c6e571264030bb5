//! The server's signing keys (ES256): created on first start, stored sealed (see `sealing`), published
//! as the JWKS, rotated by `countersign keys rotate`. A rotated-out key stays published until every
//! token it signed has expired. A key is used or published only if its private half opens with this
//! server's key-encryption key and its public half is the one that private key makes: a row written
//! into the database by hand is neither published nor signed with.
use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, RwLock},
};

use josekit::{
    jwk::{alg::ec::EcKeyPair, Jwk, KeyPair},
    jws::{JwsHeader, JwsSigner, JwsVerifier, ES256},
    jwt::{self, JwtPayload},
};
use serde_json::{json, Map, Value};

use crate::{
    clock::Millis,
    sealing::{is_sealed, Kek, SealError},
    secrets::random_id,
    store::{signing_keys::SigningKeyRow, Store, StoreError},
};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("JOSE error: {0}")]
    Jose(#[from] josekit::JoseError),
    #[error("no signing key is active")]
    NoActiveKey,
    #[error("signing key {0} cannot be used: {1}")]
    Refused(String, &'static str),
    #[error("the token is not of the expected type {0}")]
    WrongType(String),
}

/// What is loaded from the store: the active signer, a verifier for every published key, and one for
/// every key this server ever had (for its own records, which outlive publication).
struct KeySet {
    active_kid: String,
    signer: Box<dyn JwsSigner>,
    verifiers: HashMap<String, Box<dyn JwsVerifier>>,
    archive: HashMap<String, Box<dyn JwsVerifier>>,
    jwks: Arc<[u8]>,
    /// Rows refused by `open_key`, so each is reported once, not at every refresh.
    refused: BTreeSet<String>,
}

pub struct KeyRing {
    store: Store,
    kek: Arc<Kek>,
    /// How long a retired key stays published: the longest token lifetime.
    retention: Millis,
    keys: RwLock<Arc<KeySet>>,
}

impl KeyRing {
    /// The key-encryption key the ring's keys are sealed under, for keys derived from it.
    pub fn kek(&self) -> &Kek {
        &self.kek
    }

    /// Loads the keys, creating the first one when the store has none.
    pub async fn load(
        store: Store,
        kek: Arc<Kek>,
        retention: Millis,
        now: Millis,
    ) -> Result<KeyRing, KeyError> {
        let set = match load_set(&store, &kek, retention, now).await {
            Err(KeyError::NoActiveKey) => {
                rotate(&store, &kek, now).await?;
                load_set(&store, &kek, retention, now).await?
            }
            other => other?,
        };
        Ok(KeyRing {
            store,
            kek,
            retention,
            keys: RwLock::new(Arc::new(set)),
        })
    }

    /// Picks up rotations made by the command line or another instance.
    pub async fn refresh(&self, now: Millis) -> Result<(), KeyError> {
        let set = load_set(&self.store, &self.kek, self.retention, now).await?;
        let before = self.current();
        for refused in set.refused.difference(&before.refused) {
            tracing::error!(refused, "signing key neither published nor trusted");
        }
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        Ok(())
    }

    fn current(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The JWKS document, pre-serialised.
    pub fn jwks(&self) -> Arc<[u8]> {
        self.current().jwks.clone()
    }

    pub fn active_kid(&self) -> String {
        self.current().active_kid.clone()
    }

    /// Signs `claims` as a compact JWS with the active key and the given `typ` header.
    pub fn sign(&self, typ: &str, claims: Map<String, Value>) -> Result<String, KeyError> {
        let set = self.current();
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(set.active_kid.clone());
        let payload = JwtPayload::from_map(claims)?;
        Ok(jwt::encode_with_signer(
            &payload,
            &header,
            set.signer.as_ref(),
        )?)
    }

    /// Verifies a JWT of type `typ` (its header's `typ`, exactly: RFC 8725 §3.11, so an access token
    /// never passes for an ID token) signed by any published key; returns its claims. Time claims are
    /// the caller's to check.
    pub fn verify(&self, token: &str, typ: &str) -> Result<Map<String, Value>, KeyError> {
        verify_with(&self.current().verifiers, token, Some(typ))
    }

    /// As [`KeyRing::verify`], with any key this server ever had (a token whose key has left the
    /// published set).
    pub fn verify_issued(&self, token: &str, typ: &str) -> Result<Map<String, Value>, KeyError> {
        verify_with(&self.current().archive, token, Some(typ))
    }

    /// Verifies one of this server's own sealed records (decision records, key registry entries), which
    /// may be older than any published key: any key this server ever had will do. Each record's checks
    /// compare its claims with the row it seals, so no other kind of JWS can pass for one.
    pub fn verify_record(&self, jws: &str) -> Result<Map<String, Value>, KeyError> {
        verify_with(&self.current().archive, jws, None)
    }
}

/// Generates a new ES256 key and makes it the active one; the previous key is retired, not deleted.
pub async fn rotate(store: &Store, kek: &Kek, now: Millis) -> Result<String, KeyError> {
    let pair = ES256.generate_key_pair()?;
    let kid = random_id();
    let mut private = pair.to_jwk_private_key();
    private.set_key_id(kid.clone());
    let mut public = pair.to_jwk_public_key();
    public.set_key_id(kid.clone());
    public.set_key_use("sig");
    public.set_algorithm("ES256");
    store
        .rotate_signing_key(&SigningKeyRow {
            kid: kid.clone(),
            alg: "ES256".into(),
            private_jwk: kek.seal(&seal_label(&kid), &private.to_string()),
            public_jwk: public.to_string(),
            created_at: now,
            retired_at: None,
        })
        .await?;
    Ok(kid)
}

/// The associated data a signing key's private half is sealed under: its row.
fn seal_label(kid: &str) -> String {
    format!("signing_keys/{kid}")
}

/// Seals keys stored in plain text by versions before sealing, when no key is sealed yet; only
/// `countersign keys seal-legacy` does this (`legacy`), never a start, so a plain key planted in the
/// database is refused rather than adopted. Returns how many were sealed.
pub(crate) async fn seal_plain_keys(store: &Store, kek: &Kek) -> Result<usize, KeyError> {
    let rows = store.signing_keys(i64::MIN).await?;
    if rows.iter().any(|r| is_sealed(&r.private_jwk)) {
        return Ok(0);
    }
    for row in &rows {
        let sealed = kek.seal(&seal_label(&row.kid), &row.private_jwk);
        store
            .reseal_signing_key(&row.kid, &row.private_jwk, &sealed)
            .await?;
        tracing::info!(kid = %row.kid, "signing key sealed under the key-encryption key");
    }
    Ok(rows.len())
}

/// The key pair of a stored key, if its private half opens with `kek` and its public half is its own.
fn open_key(kek: &Kek, row: &SigningKeyRow) -> Result<(Jwk, Jwk), KeyError> {
    let refused = |why| KeyError::Refused(row.kid.clone(), why);
    let private = kek
        .open(&seal_label(&row.kid), &row.private_jwk)
        .map_err(|e| match e {
            SealError::Plain => refused("its private key is stored in plain text (written by hand? If an earlier version stored it so, `countersign keys seal-legacy` seals it once)"),
            SealError::WrongKey => refused("its private key is not sealed by this server's key-encryption key (is COUNTERSIGN_KEY_FILE or COUNTERSIGN_KEY the one the keys were made with?)"),
        })?;
    let private =
        Jwk::from_bytes(&private).map_err(|_| refused("its private key is unreadable"))?;
    let public =
        Jwk::from_bytes(&row.public_jwk).map_err(|_| refused("its public key is unreadable"))?;
    let derived = EcKeyPair::from_jwk(&private)
        .map_err(|_| refused("its private key is not an EC key"))?
        .to_jwk_public_key();
    let same = ["kty", "crv", "x", "y"]
        .iter()
        .all(|p| public.parameter(p).is_some() && public.parameter(p) == derived.parameter(p));
    if !same {
        return Err(refused(
            "its public key is not the one its private key makes",
        ));
    }
    Ok((private, public))
}

async fn load_set(
    store: &Store,
    kek: &Kek,
    retention: Millis,
    now: Millis,
) -> Result<KeySet, KeyError> {
    let rows = store.signing_keys(i64::MIN).await?;
    let active = rows
        .iter()
        .find(|r| r.retired_at.is_none())
        .ok_or(KeyError::NoActiveKey)?;
    let (private, _) = open_key(kek, active)?;
    let signer = Box::new(ES256.signer_from_jwk(&private)?);
    let mut verifiers: HashMap<String, Box<dyn JwsVerifier>> = HashMap::new();
    let mut archive: HashMap<String, Box<dyn JwsVerifier>> = HashMap::new();
    let mut published = Vec::new();
    let mut refused = BTreeSet::new();
    for row in &rows {
        let public = match open_key(kek, row) {
            Ok((_, public)) => public,
            Err(e) => {
                refused.insert(e.to_string());
                continue;
            }
        };
        archive.insert(row.kid.clone(), Box::new(ES256.verifier_from_jwk(&public)?));
        if row.retired_at.is_none_or(|at| at > now - retention) {
            verifiers.insert(row.kid.clone(), Box::new(ES256.verifier_from_jwk(&public)?));
            published.push(Value::Object(public.as_ref().clone()));
        }
    }
    let jwks = serde_json::to_vec(&json!({ "keys": published })).expect("JSON values serialise");
    Ok(KeySet {
        active_kid: active.kid.clone(),
        signer,
        verifiers,
        archive,
        jwks: jwks.into(),
        refused,
    })
}

fn verify_with(
    verifiers: &HashMap<String, Box<dyn JwsVerifier>>,
    token: &str,
    typ: Option<&str>,
) -> Result<Map<String, Value>, KeyError> {
    let (payload, header) = jwt::decode_with_verifier_selector(token, |header| {
        Ok(header
            .key_id()
            .and_then(|kid| verifiers.get(kid))
            .filter(|_| header.algorithm() == Some("ES256"))
            .map(|v| v.as_ref()))
    })?;
    if let Some(typ) = typ {
        if header.token_type() != Some(typ) {
            return Err(KeyError::WrongType(typ.to_owned()));
        }
    }
    Ok(payload.claims_set().clone())
}

/// Verifies JWSs made with any key this server ever had, retired ones included: for the audit of
/// records older than the published key set. With the key-encryption key, only keys whose sealed
/// private half opens and matches are trusted (the others are `refused`); without it, every stored
/// public key is, so a key planted in the database would go unseen.
pub struct ArchiveVerifier {
    verifiers: HashMap<String, Box<dyn JwsVerifier>>,
    /// `(kid, why)` of each stored key not trusted.
    pub refused: Vec<(String, String)>,
    /// Whether the keys were checked against the key-encryption key.
    pub keys_checked: bool,
    /// The trusted public keys, each with its `kid` (for evidence bundles).
    pub public_keys: Vec<Value>,
}

impl ArchiveVerifier {
    pub async fn load(store: &Store, kek: Option<&Kek>) -> Result<ArchiveVerifier, StoreError> {
        let mut verifiers: HashMap<String, Box<dyn JwsVerifier>> = HashMap::new();
        let mut refused = Vec::new();
        let mut public_keys = Vec::new();
        for row in store.signing_keys(i64::MIN).await? {
            let public = match kek {
                Some(kek) => open_key(kek, &row).map(|(_, public)| public),
                None => Jwk::from_bytes(&row.public_jwk).map_err(|_| {
                    KeyError::Refused(row.kid.clone(), "its public key is unreadable")
                }),
            };
            let verifier = public.and_then(|jwk| Ok((ES256.verifier_from_jwk(&jwk)?, jwk)));
            match verifier {
                Ok((v, mut jwk)) => {
                    jwk.set_key_id(&row.kid);
                    public_keys.push(Value::Object(jwk.as_ref().clone()));
                    verifiers.insert(row.kid, Box::new(v));
                }
                Err(e) => refused.push((row.kid, e.to_string())),
            }
        }
        Ok(ArchiveVerifier {
            verifiers,
            refused,
            keys_checked: kek.is_some(),
            public_keys,
        })
    }

    pub fn verify(&self, token: &str) -> Result<Map<String, Value>, KeyError> {
        verify_with(&self.verifiers, token, None)
    }
}
