//! Checkpoints: the heads of the evidence chains (decision records, passkey key registry, admin log), signed
//! by the server and written outside the database. A hash chain shows an edit or a deletion in its
//! middle, but not a deleted tail or an emptied table; a checkpoint kept where the database's users
//! cannot write does. The server writes one when a head moved (checked every minute) and on shutdown,
//! to `latest.jws` (replaced atomically) and appended to `checkpoints.jws` (one per line);
//! `countersign audit checkpoint` prints one for storage elsewhere, and `audit verify` compares the
//! chains with the latest. The checkpoints of a directory are numbered, each naming the one before
//! (hash of its JWS), and the database records what each directory was given, so a directory put back
//! from an older copy is seen at start and by `audit verify`.
use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    clock::Millis,
    private_files,
    signing::{KeyError, KeyRing},
    store::{decisions::GENESIS_HASH, Store, StoreError},
};

/// The JWS `typ` of a checkpoint.
pub const CHECKPOINT_JWS_TYPE: &str = "countersign-checkpoint+jwt";
const LATEST: &str = "latest.jws";
const LOG: &str = "checkpoints.jws";

/// The last entry of a chain: its sequence number and hash (0 and the genesis hash when empty).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

impl ChainHead {
    fn empty() -> ChainHead {
        ChainHead {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heads {
    pub decisions: ChainHead,
    pub key_registry: ChainHead,
    /// Absent from checkpoints made before the admin log was a chain: nothing to compare then.
    #[serde(default = "ChainHead::empty")]
    pub admin_log: ChainHead,
}

/// A checkpoint's claims.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    pub iss: String,
    /// When it was made, in Unix milliseconds.
    pub made_at: Millis,
    #[serde(flatten)]
    pub heads: Heads,
    /// Its place among the checkpoints of its directory, from 1; 0 for one made to be kept elsewhere
    /// (`audit checkpoint`), and for those made before checkpoints were numbered.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seq: i64,
    /// The SHA-256 (hex) of the JWS of the checkpoint before it in its directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// The file in a checkpoint directory naming it, for the database's record of what it was given.
const DIRECTORY_ID: &str = "directory.id";

/// The SHA-256 (hex) of a checkpoint's JWS, as the next one and the database name it.
pub fn jws_hash(jws: &str) -> String {
    crate::secrets::hex(&crate::secrets::sha256(jws.trim().as_bytes()))
}

/// The id of checkpoint directory `dir`, if it has one.
pub fn directory_id(dir: &Path) -> std::io::Result<Option<String>> {
    Ok(read_if_there(&dir.join(DIRECTORY_ID))?.map(|id| id.trim().to_owned()))
}

/// A file's text, or None when there is no such file.
fn read_if_there(path: &Path) -> std::io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// What is wrong with `latest` (the latest checkpoint in `dir`, or none) given what the database
/// recorded that directory was given: a checkpoint older than the last one written means the
/// directory was put back from a copy; the latest one missing, that it was emptied.
pub async fn rollback_problem(
    store: &Store,
    dir: &Path,
    latest: Option<(&Checkpoint, &str)>,
) -> Result<Option<String>, CheckpointError> {
    let Some(id) = directory_id(dir)? else {
        return Ok(None);
    };
    let Some((seq, hash)) = store.last_checkpoint(&id).await? else {
        return Ok(None);
    };
    Ok(match latest {
        None => Some(format!(
            "the checkpoint directory has lost its latest checkpoint: checkpoint {seq} was written to it"
        )),
        Some((checkpoint, _)) if checkpoint.seq < seq => Some(format!(
            "the checkpoint directory's latest checkpoint is number {}, yet number {seq} was written to it: an older checkpoint was put back",
            checkpoint.seq
        )),
        Some((checkpoint, jws)) if checkpoint.seq == seq && jws_hash(jws) != hash => Some(format!(
            "the checkpoint directory's latest checkpoint is not checkpoint {seq} as it was written"
        )),
        Some(_) => None,
    })
}

pub async fn heads(store: &Store) -> Result<Heads, StoreError> {
    let (decisions, key_registry) = store.chain_heads().await?;
    let head = |h: Option<(i64, String)>| {
        h.map_or_else(ChainHead::empty, |(seq, hash)| ChainHead { seq, hash })
    };
    Ok(Heads {
        decisions: head(decisions),
        key_registry: head(key_registry),
        admin_log: head(store.admin_log_head().await?),
    })
}

/// A signed checkpoint of the chains as they are now.
pub async fn make(
    store: &Store,
    keys: &KeyRing,
    issuer: &str,
    now: Millis,
) -> Result<String, CheckpointError> {
    let checkpoint = Checkpoint {
        iss: issuer.to_owned(),
        made_at: now,
        heads: heads(store).await?,
        seq: 0,
        prev: None,
    };
    sign(keys, &checkpoint)
}

fn sign(keys: &KeyRing, checkpoint: &Checkpoint) -> Result<String, CheckpointError> {
    let Value::Object(claims) = serde_json::to_value(checkpoint).expect("serialisable") else {
        unreachable!("a checkpoint is an object")
    };
    Ok(keys.sign(CHECKPOINT_JWS_TYPE, claims)?)
}

/// The checkpoint a JWS holds, if `verify` (which checks the server's signature) accepts it.
pub fn read(
    jws: &str,
    verify: impl Fn(&str) -> Result<Map<String, Value>, KeyError>,
) -> Result<Checkpoint, CheckpointError> {
    let claims = verify(jws.trim())?;
    serde_json::from_value(Value::Object(claims)).map_err(|_| CheckpointError::Unreadable)
}

/// The latest checkpoint written to `dir`, if any.
pub fn latest(dir: &Path) -> std::io::Result<Option<String>> {
    read_if_there(&dir.join(LATEST))
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing: {0}")]
    Key(#[from] KeyError),
    #[error("writing the checkpoint: {0}")]
    Io(#[from] std::io::Error),
    #[error("the checkpoint is not one this server signed")]
    Unreadable,
}

/// Writes checkpoints to a directory when the heads moved.
pub struct CheckpointWriter {
    dir: PathBuf,
    store: Store,
    keys: Arc<KeyRing>,
    issuer: String,
    last: Mutex<Option<Heads>>,
}

impl CheckpointWriter {
    pub fn new(dir: PathBuf, store: Store, keys: Arc<KeyRing>, issuer: String) -> CheckpointWriter {
        CheckpointWriter {
            dir,
            store,
            keys,
            issuer,
            last: Mutex::new(None),
        }
    }

    /// Compares the chains with the latest checkpoint in the directory: what it saw must still be
    /// there. Returns what is not (the full check is `audit verify`).
    pub async fn compare_with_latest(&self) -> Result<Vec<String>, CheckpointError> {
        let Some(jws) = latest(&self.dir)? else {
            return Ok(rollback_problem(&self.store, &self.dir, None)
                .await?
                .into_iter()
                .collect());
        };
        let checkpoint = read(&jws, |jws| self.keys.verify_record(jws))?;
        if let Some(problem) =
            rollback_problem(&self.store, &self.dir, Some((&checkpoint, &jws))).await?
        {
            return Ok(vec![problem]);
        }
        let (decision, entry) = self
            .store
            .chain_hashes_at(
                checkpoint.heads.decisions.seq,
                checkpoint.heads.key_registry.seq,
            )
            .await?;
        let admin_entry = self
            .store
            .admin_log_hash_at(checkpoint.heads.admin_log.seq)
            .await?;
        let mut problems = Vec::new();
        for (name, head, hash) in [
            ("decision record", &checkpoint.heads.decisions, decision),
            ("key registry", &checkpoint.heads.key_registry, entry),
            ("admin log", &checkpoint.heads.admin_log, admin_entry),
        ] {
            if head.seq > 0 && hash.as_deref() != Some(head.hash.as_str()) {
                problems.push(format!(
                    "the {name} no longer holds entry {} as the checkpoint made at {} saw it",
                    head.seq, checkpoint.made_at
                ));
            }
        }
        Ok(problems)
    }

    /// Writes a checkpoint unless the heads are those of the last one written; true if written.
    pub async fn write_if_moved(&self, now: Millis) -> Result<bool, CheckpointError> {
        let heads = heads(&self.store).await?;
        if self.last.lock().unwrap_or_else(|e| e.into_inner()).as_ref() == Some(&heads) {
            return Ok(false);
        }
        let id = self.directory_id()?;
        // The next in this directory's sequence, after the last one the database recorded for it
        // (or, for a directory from before the record, its latest).
        let previous = match self.store.last_checkpoint(&id).await? {
            Some(last) => Some(last),
            None => match latest(&self.dir)? {
                Some(jws) => read(&jws, |jws| self.keys.verify_record(jws))
                    .ok()
                    .map(|c| (c.seq, jws_hash(&jws))),
                None => None,
            },
        };
        let seq = previous.as_ref().map_or(1, |(seq, _)| seq + 1);
        let jws = sign(
            &self.keys,
            &Checkpoint {
                iss: self.issuer.clone(),
                made_at: now,
                heads: heads.clone(),
                seq,
                prev: previous.map(|(_, hash)| hash),
            },
        )?;
        self.write(&jws)?;
        self.store
            .record_checkpoint(&id, seq, &jws_hash(&jws), now)
            .await?;
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(heads);
        Ok(true)
    }

    /// This directory's id, made at its first checkpoint.
    fn directory_id(&self) -> std::io::Result<String> {
        if let Some(id) = directory_id(&self.dir)? {
            return Ok(id);
        }
        private_files::create_dir_all(&self.dir)?;
        let id = crate::secrets::random_id();
        private_files::write(&self.dir.join(DIRECTORY_ID), id.as_bytes())?;
        Ok(id)
    }

    fn write(&self, jws: &str) -> std::io::Result<()> {
        private_files::create_dir_all(&self.dir)?;
        let mut log = private_files::options()
            .create(true)
            .append(true)
            .open(self.dir.join(LOG))?;
        writeln!(log, "{jws}")?;
        log.sync_data()?;
        // Replaced in one step, so a reader never sees half a checkpoint.
        let temp = self.dir.join(format!("{LATEST}.tmp"));
        private_files::write(&temp, jws.as_bytes())?;
        fs::File::open(&temp)?.sync_all()?;
        fs::rename(temp, self.dir.join(LATEST))
    }
}
