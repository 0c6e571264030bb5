//! The in-memory directory of clients.
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc, RwLock,
    },
};

use super::Client;
use crate::{
    clock::Millis,
    store::{clients::ClientRow, Store, StoreError},
};

/// The in-memory view of the `clients` table. Refreshed every second from rows changed since the last
/// look (so `client disable` and `rotate-secret` take effect within about a second on every instance);
/// a miss falls through to the database, so a just-created client works at once.
pub struct ClientDirectory {
    store: Store,
    clients: RwLock<HashMap<String, Arc<Client>>>,
    refreshed_at: AtomicI64,
}

/// Rows changed this close before the last refresh are read again, to cover clock skew between writers.
const REFRESH_OVERLAP_MS: Millis = 5_000;

impl ClientDirectory {
    pub fn new(store: Store) -> ClientDirectory {
        ClientDirectory {
            store,
            clients: RwLock::new(HashMap::new()),
            refreshed_at: AtomicI64::new(0),
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        if let Some(client) = self
            .clients
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            return Ok(Some(client.clone()));
        }
        let Some(row) = self.store.client(id).await? else {
            return Ok(None);
        };
        Ok(self.insert(row))
    }

    pub async fn refresh(&self, now: Millis) -> Result<(), StoreError> {
        let since = self.refreshed_at.load(Ordering::Relaxed) - REFRESH_OVERLAP_MS;
        for row in self.store.clients_updated_since(since).await? {
            self.insert(row);
        }
        self.refreshed_at.store(now, Ordering::Relaxed);
        Ok(())
    }

    fn insert(&self, row: ClientRow) -> Option<Arc<Client>> {
        let id = row.id.clone();
        match Client::from_row(row) {
            Ok(client) => {
                let client = Arc::new(client);
                self.clients
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id, client.clone());
                Some(client)
            }
            Err(e) => {
                tracing::error!(client_id = %id, error = %e, "stored client is unreadable; treating it as unknown");
                None
            }
        }
    }
}
