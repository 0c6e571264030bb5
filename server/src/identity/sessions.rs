//! Browser sessions stored in the database (tower-sessions' `SessionStore`), so they survive restarts
//! and are shared by several instances on PostgreSQL. A row is keyed by an HMAC of the session id under
//! a key derived from the key-encryption key, never the id itself, and its data is sealed under that
//! key with the row key as label: whoever reads the database cannot take over a session from it, and
//! whoever writes it can neither mint a session (a row they make has no key they could compute, and
//! data they write does not open) nor move one to another row. Signed-out ceremonies keep their state
//! in a cookie (`identity::ceremonies`), so a row is written once someone signs in; should anything
//! else write a row for nobody, it lives only minutes.
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;
use tower_sessions::{
    session::{Id, Record},
    session_store::{Error, Result},
    SessionStore,
};

use crate::{
    sealing::{BearerDigests, Kek},
    store::Store,
};

/// The session key under which a signed-in person is kept (see `ui::identity`).
pub const SIGNED_IN: &str = "signed_in";

/// Who a session signed in, as the session keeps it; whether it still does is
/// `Accounts::session_holder`'s to say.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct SignedInUser {
    pub approver_id: String,
    /// The approver's session epoch when it was made: "sign out everywhere" moves it on.
    pub epoch: i64,
    pub since: crate::clock::Millis,
    /// The passkey the session was made with: removing or suspending it ends the session. A session
    /// without one is refused.
    #[serde(default)]
    pub credential_id: Option<String>,
}

/// How long a session row lives while nobody is signed in with it, so that signed-out browsers could
/// not pile rows up even if something wrote one for them.
pub const SIGNED_OUT_TTL_MS: i64 = 10 * 60_000;

#[derive(Debug, Clone)]
pub struct DbSessionStore {
    store: Store,
    kek: Arc<Kek>,
    digests: BearerDigests,
}

impl DbSessionStore {
    pub fn new(store: Store, kek: Arc<Kek>) -> DbSessionStore {
        DbSessionStore {
            store,
            digests: BearerDigests::new(&kek),
            kek,
        }
    }

    /// The row key of session `id`.
    pub fn row_key(&self, id: &Id) -> String {
        self.digests.of("session", &id.to_string())
    }

    fn seal(&self, row_key: &str, record: &Record) -> Result<String> {
        let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
        Ok(self.kek.seal(&label(row_key), &data))
    }
}

/// The sealing label of a session row's data: the row it belongs to.
fn label(row_key: &str) -> String {
    format!("sessions/{row_key}")
}

fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// When `record`'s row ends: at its expiry once someone is signed in with it, and within
/// [`SIGNED_OUT_TTL_MS`] before.
fn row_expiry(record: &Record) -> i64 {
    let expiry = millis(record.expiry_date);
    if record.data.contains_key(SIGNED_IN) {
        expiry
    } else {
        expiry.min(millis(OffsetDateTime::now_utc()).saturating_add(SIGNED_OUT_TTL_MS))
    }
}

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        // A fresh id on the (astronomically unlikely) collision, never an overwrite of another session.
        loop {
            let key = self.row_key(&record.id);
            let data = self.seal(&key, record)?;
            if self
                .store
                .create_session(&key, &data, row_expiry(record))
                .await
                .map_err(backend)?
            {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let key = self.row_key(&record.id);
        let data = self.seal(&key, record)?;
        self.store
            .save_session(&key, &data, row_expiry(record))
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let now = millis(OffsetDateTime::now_utc());
        let key = self.row_key(id);
        let Some((sealed, expires_at)) =
            self.store.load_session(&key, now).await.map_err(backend)?
        else {
            return Ok(None);
        };
        // Data that does not open was not written by this server for this row (written by hand,
        // moved from another row, or left by a version that stored it plain): no session.
        let Ok(data) = self.kek.open(&label(&key), &sealed) else {
            tracing::warn!("a session row whose data does not open was ignored");
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
            .delete_session(&self.row_key(id))
            .await
            .map_err(backend)
    }
}
