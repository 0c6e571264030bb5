//! The `key_registry` table: the hash-chained, server-signed registry of passkey public keys (see
//! `identity::registry`). Entries are appended in a transaction that holds the registry's lock, so the
//! chain never forks.
use sqlx::FromRow;

use super::{Backend, Store, StoreError, StoreResult};

#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct KeyEntryRow {
    pub seq: i64,
    pub credential_id: String,
    pub approver_id: String,
    pub public_key: String,
    pub registered_at: i64,
    /// How the key arrived (`identity::provenance`), as JSON; None for keys sealed before it was kept.
    pub provenance: Option<String>,
    pub prev_hash: String,
    pub entry_hash: String,
    pub jws: String,
}

const COLUMNS: &str =
    "seq, credential_id, approver_id, public_key, registered_at, provenance, prev_hash, entry_hash, jws";

/// PostgreSQL advisory lock ids: one per chain.
pub(super) const DECISION_CHAIN_LOCK: i64 = 7_242_001;
const KEY_CHAIN_LOCK: i64 = 7_242_002;

/// A key to register: `seal` turns it, given the previous entry's hash, into the entry to store.
pub type KeySeal<'a> = &'a (dyn Fn(&str) -> StoreResult<KeyEntryRow> + Send + Sync);

impl Store {
    /// A transaction that appends to a chain: SQLite takes the write lock up front, PostgreSQL the
    /// chain's advisory lock, so two writers never read the same head.
    pub(super) async fn begin_chained(
        &self,
        pg_lock: i64,
    ) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend() {
            Backend::Sqlite => self.pool().begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut tx = self.pool().begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(pg_lock)
                    .execute(&mut *tx)
                    .await?;
                tx
            }
        })
    }

    pub(super) async fn begin_key_chain(
        &self,
    ) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        self.begin_chained(KEY_CHAIN_LOCK).await
    }

    /// Appends one entry on its own (a key whose passkey row is written elsewhere, or not kept).
    pub async fn append_key_entry(&self, seal: KeySeal<'_>) -> StoreResult<()> {
        let mut tx = self.begin_key_chain().await?;
        append_key(&mut tx, seal).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The registry entry of a credential.
    pub async fn key_entry(&self, credential_id: &str) -> StoreResult<Option<KeyEntryRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM key_registry WHERE credential_id = $1"
        ))
        .bind(credential_id)
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn key_registry_len(&self) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM key_registry")
            .fetch_one(self.pool())
            .await?;
        Ok(n)
    }

    /// The heads of the decision chain and of the key registry: (seq, hash) of each last entry.
    #[allow(clippy::type_complexity)]
    pub async fn chain_heads(&self) -> StoreResult<(Option<(i64, String)>, Option<(i64, String)>)> {
        let decisions =
            sqlx::query_as("SELECT seq, record_hash FROM decisions ORDER BY seq DESC LIMIT 1")
                .fetch_optional(self.pool())
                .await?;
        let keys =
            sqlx::query_as("SELECT seq, entry_hash FROM key_registry ORDER BY seq DESC LIMIT 1")
                .fetch_optional(self.pool())
                .await?;
        Ok((decisions, keys))
    }

    /// The hashes of decision record `decision_seq` and key registry entry `key_seq`, where they exist.
    pub async fn chain_hashes_at(
        &self,
        decision_seq: i64,
        key_seq: i64,
    ) -> StoreResult<(Option<String>, Option<String>)> {
        let decision = sqlx::query_scalar("SELECT record_hash FROM decisions WHERE seq = $1")
            .bind(decision_seq)
            .fetch_optional(self.pool())
            .await?;
        let key = sqlx::query_scalar("SELECT entry_hash FROM key_registry WHERE seq = $1")
            .bind(key_seq)
            .fetch_optional(self.pool())
            .await?;
        Ok((decision, key))
    }

    /// The whole registry, oldest first.
    pub async fn key_registry(&self) -> StoreResult<Vec<KeyEntryRow>> {
        Ok(
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM key_registry ORDER BY seq"))
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// Keys known before the registry was a chain: the unsealed `passkey_keys`, and passkeys added
    /// before even that, as (credential_id, approver_id, passkey JSON or public key, registered_at,
    /// whether the third field is a whole passkey).
    pub async fn unsealed_keys(&self) -> StoreResult<Vec<(String, String, String, i64, bool)>> {
        let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT credential_id, approver_id, public_key, registered_at, 0 FROM passkey_keys \
             UNION ALL \
             SELECT p.credential_id, p.approver_id, p.passkey, p.created_at, 1 FROM passkeys p \
             WHERE NOT EXISTS (SELECT 1 FROM passkey_keys k WHERE k.credential_id = p.credential_id) \
             ORDER BY 4, 1",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(c, a, k, at, whole)| (c, a, k, at, whole == 1))
            .collect())
    }

    /// Seals the unsealed keys into the registry, if it is still empty (see `identity::registry`).
    pub async fn seal_unsealed_keys(&self, seals: &[KeySeal<'_>]) -> StoreResult<usize> {
        let mut tx = self.begin_key_chain().await?;
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM key_registry")
            .fetch_one(&mut *tx)
            .await?;
        if n > 0 {
            return Ok(0);
        }
        for seal in seals {
            append_key(&mut tx, *seal).await?;
        }
        tx.commit().await?;
        Ok(seals.len())
    }
}

/// Appends the entry `seal` makes from the current head, within `tx` (begun by `begin_key_chain`).
pub(super) async fn append_key(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    seal: KeySeal<'_>,
) -> StoreResult<()> {
    let prev: Option<(String,)> =
        sqlx::query_as("SELECT entry_hash FROM key_registry ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?;
    let row = seal(
        prev.as_ref()
            .map_or(super::decisions::GENESIS_HASH, |(h,)| h),
    )?;
    sqlx::query(
        "INSERT INTO key_registry (credential_id, approver_id, public_key, registered_at, provenance, prev_hash, entry_hash, jws) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row.credential_id)
    .bind(&row.approver_id)
    .bind(&row.public_key)
    .bind(row.registered_at)
    .bind(&row.provenance)
    .bind(&row.prev_hash)
    .bind(&row.entry_hash)
    .bind(&row.jws)
    .execute(&mut **tx)
    .await
    .map_err(|e| StoreError::on_unique(e, "passkey"))?;
    Ok(())
}
