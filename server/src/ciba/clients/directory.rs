//! The in-memory directory of clients.
use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use super::Client;
use crate::{
    clock::Millis,
    store::{clients::ClientRow, Store, StoreError},
};

/// The in-memory view of the `clients` table, read whole every second (so `client disable` and
/// `rotate-secret` take effect within about a second on every instance); a miss falls through to the
/// database, so a just-created client works at once. Reading every row, rather than those changed
/// since the last look, asks nothing of the writers' clocks: a change written by a machine whose
/// clock is behind is seen like any other. The table holds one row per agent, so this stays cheap.
pub struct ClientDirectory {
    store: Store,
    clients: RwLock<HashMap<String, Arc<Client>>>,
}

impl ClientDirectory {
    pub fn new(store: Store) -> ClientDirectory {
        ClientDirectory {
            store,
            clients: RwLock::new(HashMap::new()),
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

    pub async fn refresh(&self, _now: Millis) -> Result<(), StoreError> {
        let mut fresh = HashMap::new();
        for row in self.store.clients().await? {
            let id = row.id.clone();
            if let Some(client) = readable(row) {
                fresh.insert(id, Arc::new(client));
            }
        }
        *self.clients.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    fn insert(&self, row: ClientRow) -> Option<Arc<Client>> {
        let id = row.id.clone();
        let client = Arc::new(readable(row)?);
        self.clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, client.clone());
        Some(client)
    }
}

/// The client a stored row describes; an unreadable row is logged and treated as no client.
fn readable(row: ClientRow) -> Option<Client> {
    let id = row.id.clone();
    Client::from_row(row)
        .inspect_err(|e| {
            tracing::error!(client_id = %id, error = %e, "stored client is unreadable; treating it as unknown");
        })
        .ok()
}
