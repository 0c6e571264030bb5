//! Browser sessions stored in the database (tower-sessions' `SessionStore`), so they survive restarts
//! and are shared by several instances on PostgreSQL. A row is keyed by a hash of the session id, never
//! the id itself: whoever reads the database cannot take over a session from it. A session nobody has
//! signed in with yet (a sign-in or enrollment under way) lives only minutes.
use async_trait::async_trait;
use time::OffsetDateTime;
use tower_sessions::{
    session::{Id, Record},
    session_store::{Error, Result},
    SessionStore,
};

use crate::{
    secrets::{hex, sha256},
    store::Store,
};

/// The session key under which a signed-in person is kept (see `ui::identity`).
pub const SIGNED_IN: &str = "signed_in";

/// How long a session lives in the database while nobody is signed in with it: long enough for a
/// sign-in or enrollment ceremony, short enough that calls from signed-out browsers cannot pile rows
/// up (with the limits per address, see `limits`).
pub const CEREMONY_TTL_MS: i64 = 10 * 60_000;

#[derive(Debug, Clone)]
pub struct DbSessionStore {
    store: Store,
}

impl DbSessionStore {
    pub fn new(store: Store) -> DbSessionStore {
        DbSessionStore { store }
    }
}

fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The row key of session `id`: SHA-256 of its 128 random bits, domain-separated.
pub fn row_key(id: &Id) -> String {
    hex(&sha256(format!("countersign/session/v1:{id}").as_bytes()))
}

/// When `record`'s row ends: at its expiry once someone is signed in with it, and within
/// [`CEREMONY_TTL_MS`] before.
fn row_expiry(record: &Record) -> i64 {
    let expiry = millis(record.expiry_date);
    if record.data.contains_key(SIGNED_IN) {
        expiry
    } else {
        expiry.min(millis(OffsetDateTime::now_utc()).saturating_add(CEREMONY_TTL_MS))
    }
}

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
        // A fresh id on the (astronomically unlikely) collision, never an overwrite of another session.
        while !self
            .store
            .create_session(&row_key(&record.id), &data, row_expiry(record))
            .await
            .map_err(backend)?
        {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
        self.store
            .save_session(&row_key(&record.id), &data, row_expiry(record))
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let now = millis(OffsetDateTime::now_utc());
        let Some((data, expires_at)) = self
            .store
            .load_session(&row_key(id), now)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let data = serde_json::from_str(&data).map_err(|e| Error::Decode(e.to_string()))?;
        let expiry_date =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(expires_at) * 1_000_000)
                .map_err(backend)?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.store
            .delete_session(&row_key(id))
            .await
            .map_err(backend)
    }
}
