//! Agents as admins keep them: each with its last 30 days of requests; registering one (its secret
//! shown once), rotating its secret, changing its delivery and scopes, disabling and enabling it. Every change is appended to the admin
//! log, naming the admin. Running servers pick changes up within a second (`ClientDirectory`).
use std::{collections::HashMap, sync::Arc};

pub use super::Admin;

use crate::{
    ciba::{
        clients::{
            self, endpoint::EndpointPolicy, ClientCredentials, ClientError, NewClient, Settings,
        },
        Ciba,
    },
    store::{clients::ClientRow, stats::ClientCounts, StoreError},
};

/// How far back an agent's figures go.
const WINDOW_MS: i64 = 30 * 86_400_000;

/// An agent and its last 30 days.
pub struct AgentSummary {
    pub client: ClientRow,
    pub counts: ClientCounts,
}

pub struct Agents {
    ciba: Arc<Ciba>,
    policy: EndpointPolicy,
}

impl Agents {
    pub fn new(ciba: Arc<Ciba>, policy: EndpointPolicy) -> Agents {
        Agents { ciba, policy }
    }

    /// Every agent, in the order registered, with its last 30 days.
    pub async fn list(&self) -> Result<Vec<AgentSummary>, StoreError> {
        let store = self.ciba.store();
        let mut counts: HashMap<String, ClientCounts> = store
            .client_counts(self.since(), None)
            .await?
            .into_iter()
            .map(|c| (c.client_id.clone(), c))
            .collect();
        Ok(store
            .clients()
            .await?
            .into_iter()
            .map(|client| AgentSummary {
                counts: counts
                    .remove(&client.id)
                    .unwrap_or_else(|| ClientCounts::none(&client.id)),
                client,
            })
            .collect())
    }

    pub async fn get(&self, id: &str) -> Result<Option<AgentSummary>, StoreError> {
        let store = self.ciba.store();
        let Some(client) = store.client(id).await? else {
            return Ok(None);
        };
        let counts = store
            .client_counts(self.since(), Some(id))
            .await?
            .pop()
            .unwrap_or_else(|| ClientCounts::none(id));
        Ok(Some(AgentSummary { client, counts }))
    }

    /// Where an agent's figures start.
    fn since(&self) -> i64 {
        self.ciba.now() - WINDOW_MS
    }

    pub async fn register(
        &self,
        admin: &Admin<'_>,
        new: NewClient,
    ) -> Result<ClientCredentials, ClientError> {
        let name = new.name.clone();
        let detail = format!(
            "{} delivery{}{}",
            new.delivery_mode,
            if new.resource_server {
                ", resource server"
            } else {
                ""
            },
            if new.dpop_bound {
                ", DPoP required"
            } else {
                ""
            }
        );
        let credentials = clients::register(
            self.ciba.store(),
            self.ciba.client_secrets(),
            new,
            self.policy,
            self.ciba.now(),
        )
        .await?;
        super::record(
            &self.ciba,
            admin,
            "registered an agent",
            &credentials.client_id,
            Some(&format!("{name}: {detail}")),
        )
        .await?;
        Ok(credentials)
    }

    pub async fn rotate_secret(
        &self,
        admin: &Admin<'_>,
        id: &str,
    ) -> Result<ClientCredentials, ClientError> {
        let credentials = clients::rotate_secret(
            self.ciba.store(),
            self.ciba.client_secrets(),
            id,
            self.ciba.now(),
        )
        .await?;
        super::record(&self.ciba, admin, "rotated an agent's secret", id, None).await?;
        Ok(credentials)
    }

    /// Changes how agent `id` is told of decisions and what it may ask for.
    pub async fn change_settings(
        &self,
        admin: &Admin<'_>,
        id: &str,
        settings: &Settings,
    ) -> Result<(), ClientError> {
        let row = clients::change_settings(
            self.ciba.store(),
            id,
            settings,
            self.policy,
            self.ciba.now(),
        )
        .await?;
        let detail = match &row.notify_url {
            Some(url) => format!(
                "{} delivery to {url}; scopes {}",
                row.delivery_mode, row.scopes
            ),
            None => format!("{} delivery; scopes {}", row.delivery_mode, row.scopes),
        };
        super::record(
            &self.ciba,
            admin,
            "changed an agent's settings",
            id,
            Some(&detail),
        )
        .await?;
        Ok(())
    }

    /// Disables (or enables again) agent `id`; false if there is no such agent.
    pub async fn set_disabled(
        &self,
        admin: &Admin<'_>,
        id: &str,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        let changed = self
            .ciba
            .store()
            .set_client_disabled(id, disabled, self.ciba.now())
            .await?;
        if changed {
            let action = if disabled {
                "disabled an agent"
            } else {
                "enabled an agent"
            };
            super::record(&self.ciba, admin, action, id, None).await?;
        }
        Ok(changed)
    }
}
