//! The CIBA domain: backchannel authentication requests, their state machine (Pending → Approved |
//! Denied → Redeemed, expiry derived from time), decisions and token minting. No HTTP and no SQL here:
//! the `oauth` module translates HTTP into these calls and `store` persists what they decide.
use std::sync::Arc;

use crate::{
    clock::{Clock, Millis},
    identity::{approvers::ApproverCache, registry::KeyRegistry},
    signing::{KeyError, KeyRing},
    store::{
        insert_queue::InsertQueue, request_inserts::InsertLimits, retention::Swept, Store,
        StoreError,
    },
};

pub mod action;
pub mod approval;
pub mod audit;
pub mod auth_request;
pub mod bundle;
pub mod checkpoint;
pub mod checks;
pub mod clients;
pub mod decision;
mod error_code;
pub mod escalation;
pub mod hints;
pub mod ids;
pub mod pending;
pub mod poll;
pub mod quorum;
pub mod record;
pub mod request;
pub mod tokens;

pub use auth_request::{AuthRequest, RequestStatus};
pub use clients::{AuthMethod, Client, ClientDirectory, ClientSecrets, DeliveryMode};
pub use decision::{Choice, Decision, DecisionError};
pub use error_code::ErrorCode;
pub use request::{BackchannelParams, RawDetails};
pub use tokens::{Revocation, TokenResponse};

/// Lifetimes and limits; all from configuration.
#[derive(Clone, Debug)]
pub struct Policy {
    /// `expires_in` when the client does not ask for one.
    pub default_expiry_secs: i64,
    /// The longest `requested_expiry` honoured; longer requests are shortened to this.
    pub max_expiry_secs: i64,
    pub poll_interval_secs: i64,
    pub access_token_ttl_secs: i64,
    pub id_token_ttl_secs: i64,
    /// Pending requests one client may hold for one approver; 0 = unlimited.
    pub max_pending_per_approver: i64,
    /// New requests one client may make per minute; 0 = unlimited.
    pub max_requests_per_minute: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            default_expiry_secs: 300,
            max_expiry_secs: 1800,
            poll_interval_secs: 5,
            access_token_ttl_secs: 300,
            id_token_ttl_secs: 300,
            max_pending_per_approver: 5,
            max_requests_per_minute: 60,
        }
    }
}

impl Policy {
    /// How long tokens signed now may be checked: a rotated-out key stays published this long.
    pub fn longest_token_ttl_ms(&self) -> Millis {
        self.access_token_ttl_secs.max(self.id_token_ttl_secs) * 1000
    }
}

/// Errors of the CIBA endpoints, one variant per spec error code (CIBA §13, §11; RFC 6749 §5.2;
/// RFC 9396 §5). Each message is safe to show the client.
#[derive(Debug, thiserror::Error)]
pub enum CibaError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidScope(String),
    #[error("{0}")]
    UnknownUserId(String),
    #[error("the login_hint_token has expired")]
    ExpiredLoginHintToken,
    #[error("{0}")]
    UnauthorizedClient(String),
    #[error("this approver requires a user_code")]
    MissingUserCode,
    #[error("{0}")]
    InvalidUserCode(String),
    #[error("{0}")]
    InvalidBindingMessage(String),
    #[error("{0}")]
    InvalidAuthorizationDetails(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    InvalidGrant(String),
    /// RFC 9449 §5: the token request lacks the DPoP proof this client must send.
    #[error("{0}")]
    InvalidDpopProof(String),
    #[error("the auth_req_id has expired")]
    ExpiredToken,
    #[error("the approver has not decided yet")]
    AuthorizationPending,
    #[error("polling too fast: wait at least {0} seconds between token requests")]
    SlowDown(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

/// The CIBA service: what the agent-facing endpoints and (later) the approval pages call.
pub struct Ciba {
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) policy: Policy,
    pub(crate) issuer: String,
    pub(crate) keys: Arc<KeyRing>,
    /// Woken when a client notification was queued (see `notify::client`).
    pub(crate) client_notifications: Arc<tokio::sync::Notify>,
    /// The sealed passkey key registry: an approval counts only if its passkey is in it.
    pub(crate) registry: Arc<KeyRegistry>,
    pub(crate) clients: ClientDirectory,
    /// How client secrets are stored and checked (keyed under the KEK).
    pub(crate) client_secrets: ClientSecrets,
    pub(crate) pending: pending::PendingCache,
    pub(crate) approvers: ApproverCache,
    /// The newest version of every approval policy.
    pub(crate) policies: quorum::Policies,
    /// Delegations not over yet.
    pub(crate) delegations: crate::identity::delegations::Delegations,
    pub(crate) inserts: InsertQueue,
    pub(crate) events: tokio::sync::broadcast::Sender<request::RequestCreated>,
    /// Approvers whose inbox changed (a new request or a decision), or `EVERY_INBOX`.
    pub(crate) inbox: tokio::sync::broadcast::Sender<String>,
}

/// Sent on the inbox channel when changes may have been missed: every open inbox should reload.
pub const EVERY_INBOX: &str = "*";

impl Ciba {
    pub async fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        policy: Policy,
        issuer: String,
        keys: Arc<KeyRing>,
        registry: Arc<KeyRegistry>,
    ) -> Result<Ciba, CibaError> {
        let now = clock.now();
        let clients = ClientDirectory::new(store.clone());
        clients.refresh(now).await?;
        let client_secrets = ClientSecrets::new(keys.kek());
        let pending = pending::PendingCache::default();
        for request in store.pending_auth_requests(now).await? {
            pending.insert(&request);
        }
        let limits = InsertLimits {
            max_pending_per_approver: policy.max_pending_per_approver,
            max_requests_per_minute: policy.max_requests_per_minute,
        };
        let inserts = InsertQueue::start(store.clone(), limits);
        let policies = quorum::Policies::default();
        policies.refresh(&store).await?;
        let delegations = crate::identity::delegations::Delegations::default();
        delegations.refresh(&store, now).await?;
        Ok(Ciba {
            store,
            clock,
            policy,
            issuer,
            keys,
            client_notifications: Arc::default(),
            registry,
            clients,
            client_secrets,
            pending,
            approvers: ApproverCache::default(),
            policies,
            delegations,
            inserts,
            events: tokio::sync::broadcast::channel(1024).0,
            inbox: tokio::sync::broadcast::channel(1024).0,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn client_secrets(&self) -> &ClientSecrets {
        &self.client_secrets
    }

    /// New requests, as they start waiting (for notifications).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<request::RequestCreated> {
        self.events.subscribe()
    }

    /// Approvers whose inbox changed, on this instance or (on PostgreSQL) any other; `EVERY_INBOX`
    /// when some may have been missed.
    pub fn inbox_changes(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.inbox.subscribe()
    }

    /// Announces a change in `approver_id`'s inbox. On PostgreSQL the announcement goes through the
    /// database (NOTIFY), which tells every instance, this one included.
    /// The announcement is sent in the background: the agent's answer does not wait for it.
    pub(crate) fn inbox_changed(&self, approver_id: &str) {
        if self.store.backend() == crate::store::Backend::Postgres {
            let (store, approver_id) = (self.store.clone(), approver_id.to_owned());
            tokio::spawn(async move {
                if let Err(e) = store.notify_inbox(&approver_id).await {
                    tracing::warn!(error = %e, "announcing an inbox change failed");
                }
            });
        } else {
            self.inbox_changed_elsewhere(approver_id);
        }
    }

    /// When the approver's next pending request runs out of time: their inbox changes then.
    pub async fn next_expiry(&self, approver_id: &str) -> Result<Option<Millis>, CibaError> {
        Ok(self
            .store
            .next_pending_expiry(approver_id, self.clock.now())
            .await?)
    }

    /// A change announced by the database (or, on SQLite, by this instance itself).
    pub fn inbox_changed_elsewhere(&self, approver_id: &str) {
        // Nobody listening is not an error: no inbox is open.
        let _ = self.inbox.send(approver_id.to_owned());
    }

    pub fn clients(&self) -> &ClientDirectory {
        &self.clients
    }

    /// A checkpoint writer for the chains this domain appends to (see `checkpoint`).
    pub fn checkpoints(&self, dir: std::path::PathBuf) -> checkpoint::CheckpointWriter {
        checkpoint::CheckpointWriter::new(
            dir,
            self.store.clone(),
            self.keys.clone(),
            self.issuer.clone(),
        )
    }

    /// Notified whenever a client notification is queued.
    pub fn client_notifications(&self) -> Arc<tokio::sync::Notify> {
        self.client_notifications.clone()
    }

    pub fn policies(&self) -> &quorum::Policies {
        &self.policies
    }

    pub fn delegations(&self) -> &crate::identity::delegations::Delegations {
        &self.delegations
    }

    pub fn key_registry(&self) -> &Arc<KeyRegistry> {
        &self.registry
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// Periodic upkeep: picks up client and key changes made elsewhere, forgets expired poll state.
    pub async fn refresh(&self) -> Result<(), CibaError> {
        let now = self.clock.now();
        self.clients.refresh(now).await?;
        self.keys.refresh(now).await?;
        self.policies.refresh(&self.store).await?;
        self.delegations.refresh(&self.store, now).await?;
        self.pending
            .set_disabled(self.store.disabled_approver_ids().await?);
        self.pending.sweep(now);
        Ok(())
    }

    /// Retention: deletes expired sessions and the outbox of ended requests (see `store::retention`).
    /// Evidence is never deleted.
    pub async fn sweep(&self) -> Result<Swept, CibaError> {
        Ok(self.store.sweep_expired(self.clock.now()).await?)
    }

    /// Forget what the poll cache believes about `auth_req_id`: a decision was made by another instance.
    pub fn decided_elsewhere(&self, auth_req_id: &str) {
        self.pending.mark_decided(auth_req_id);
    }

    /// After a lost notification channel nothing cached can be trusted: every poll rechecks the store
    /// once, and every open inbox reloads.
    pub fn distrust_poll_cache(&self) {
        self.pending.mark_all_decided();
        self.inbox_changed_elsewhere(EVERY_INBOX);
    }
}
