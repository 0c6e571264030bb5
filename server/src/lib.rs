//! Countersign's server: wires configuration, storage, the CIBA domain, the agent-facing OAuth API and
//! the Leptos UI into one axum router. `main.rs` (the command line) and the integration tests use it.
use std::{sync::Arc, time::Duration};

use axum::Router;

pub mod admin;
pub mod agent;
pub mod ciba;
pub mod clock;
pub mod config;
pub mod fuzzing;
pub mod gate;
pub mod identity;
pub mod legacy;
pub mod limits;
pub mod notify;
pub mod oauth;
pub mod private_files;
pub mod sealing;
pub mod secrets;
pub mod seed;
pub mod signing;
pub mod store;
pub mod ui;

use ciba::Ciba;
use clock::Clock;
use config::ServeConfig;
use oauth::{AppState, Endpoints};
use store::{Backend, Store};

/// A built server: the domain service and the router that serves it.
pub struct Server {
    pub ciba: Arc<Ciba>,
    /// Approvers' accounts, as the identity pages reach them.
    pub accounts: identity::accounts::Accounts,
    /// The browser sessions' store, as the router uses it.
    pub sessions: identity::sessions::DbSessionStore,
    pub invitations: identity::invitations::Invitations,
    pub pusher: Arc<notify::Pusher>,
    pub client_notifier: Arc<notify::client::ClientNotifier>,
    pub router: Router,
}

pub async fn build(
    config: &ServeConfig,
    store: Store,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Server> {
    let endpoints = Endpoints::new(&config.public_url);
    let passkeys = identity::passkeys::Passkeys::new(&config.public_url).map(Arc::new).map_err(|e| {
        anyhow::anyhow!(
            "COUNTERSIGN_PUBLIC_URL {} cannot be a passkey origin ({e}): use a host name such as localhost, not an IP address",
            config.public_url
        )
    })?;
    let kek = Arc::new(sealing::Kek::load(&config.data.kek_source(store.url()))?);
    let keys = Arc::new(
        signing::KeyRing::load(
            store.clone(),
            kek.clone(),
            config.policy().longest_token_ttl_ms(),
            clock.now(),
        )
        .await?,
    );
    let registry = Arc::new(identity::registry::KeyRegistry::new(
        store.clone(),
        keys.clone(),
    ));
    registry.refuse_unsealed_keys().await?;
    let unkeyed = legacy::unkeyed_client_secrets(&store).await?;
    if !unkeyed.is_empty() {
        tracing::warn!(clients = ?unkeyed, "these agents' secrets are stored unkeyed, as versions before keyed digests stored them, and are refused: if this database is your own, run `countersign keys seal-legacy` once to convert them");
    }
    let mailer = match &config.smtp_url {
        Some(url) => Some(Arc::new(notify::Mailer::new(
            url,
            &config.smtp_from,
            &config.public_url,
        )?)),
        None => None,
    };
    // The VAPID key is made here at first start, so browsers can subscribe from the first page view.
    let pusher = Arc::new(
        notify::Pusher::new(
            store.clone(),
            clock.clone(),
            &kek,
            config.push_contact(),
            notify::push::PushServices::parse(&config.push_services),
        )
        .await?,
    );
    let invitations = identity::invitations::Invitations::new(store.clone(), &kek);
    let accounts = identity::accounts::Accounts::new(
        store.clone(),
        registry.clone(),
        identity::assertion::RelyingParty::of(&config.public_url),
        Arc::new(notify::notices::Notices {
            mailer: mailer.clone(),
            pusher: pusher.clone(),
        }),
        invitations.clone(),
    );
    let max_session_ms = config.session_max_hours * 3_600_000;
    let verifier = Arc::new(identity::verifier::WebauthnVerifier::new(
        accounts.clone(),
        passkeys.clone(),
        clock.clone(),
    ));
    let identity = Arc::new(ui::identity::IdentityApp::new(
        accounts.clone(),
        identity::ceremonies::Ceremonies::new(kek.clone(), store.clone()),
        clock.clone(),
        passkeys,
        verifier.clone(),
        max_session_ms,
    ));
    let sessions = identity::sessions::DbSessionStore::new(store.clone(), kek.clone());
    let ciba = Arc::new(
        Ciba::new(
            store,
            clock.clone(),
            config.policy(),
            endpoints.issuer.clone(),
            keys,
            registry,
        )
        .await?,
    );
    let approvals = Arc::new(ui::approvals::ApprovalPages::new(
        ciba::approval::Approvals::new(ciba.clone(), verifier.clone()),
    ));
    // How far back the notification sweeps look: no request stays pending longer.
    let horizon_ms = config.policy().max_expiry_secs * 1000;
    if let Some(mailer) = mailer {
        notify::run(
            mailer,
            ciba.store().clone(),
            clock.clone(),
            horizon_ms,
            ciba.subscribe(),
        );
    }
    pusher.clone().start(horizon_ms, ciba.subscribe()).await;
    let client_notifier = Arc::new(notify::client::ClientNotifier::new(
        ciba.clone(),
        clock.clone(),
        config.endpoint_policy(),
    )?);
    client_notifier.clone().start(ciba.client_notifications());
    let notifications = Arc::new(ui::devices::PushDevices::new(pusher.clone()));
    let admin = Arc::new(ui::admin::AdminPages::new(
        admin::history::History::new(
            ciba.clone(),
            ciba::audit::RelyingParty::of(&config.public_url),
        ),
        admin::agents::Agents::new(ciba.clone(), config.endpoint_policy()),
        admin::approvers::Approvers::new(ciba.clone(), invitations.clone(), accounts.clone()),
        verifier.clone(),
        ciba.clone(),
        kek.clone(),
        &config.public_url,
    ));
    let services = ui::Services {
        identity,
        approvals,
        notifications,
        admin,
        ciba: ciba.clone(),
    };
    let state = AppState {
        ciba: ciba.clone(),
        dpop: Arc::new(oauth::dpop::DpopVerifier::new(&endpoints.token, &kek)?),
        endpoints: Arc::new(endpoints),
        replay: Arc::new(oauth::replay::UsedJwts::new(ciba.store().clone())),
    };
    let limits = Arc::new(limits::AddressLimits::new(config.address_quotas()));
    let router = oauth::routes(state, limits.clone())
        .merge(ui::routes(config, services, sessions.clone()).layer(
            axum::middleware::from_fn_with_state(limits, limits::limit_ceremonies),
        ))
        .layer(axum::middleware::from_fn(ui::security::log_slow_requests))
        .layer(tower::util::option_layer(
            ui::security::strict_transport_security(&config.public_url),
        ));
    Ok(Server {
        ciba,
        accounts,
        sessions,
        invitations,
        pusher,
        client_notifier,
        router,
    })
}

/// Before serving: what the latest checkpoint (kept outside the database) saw of the evidence chains
/// must still be there, and the checkpoint must be this server's. A tail deleted, a table emptied, a
/// database put back from an older copy, or a checkpoint directory of another deployment stops the
/// start: the operator looks (`countersign audit verify`) before anything is trusted or signed.
pub async fn refuse_changed_evidence(
    checkpoints: &ciba::checkpoint::CheckpointWriter,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let problems = checkpoints.compare_with_latest().await.map_err(|e| {
        anyhow::anyhow!(
            "the latest checkpoint in {} cannot be checked ({e}): it was not signed by this server's keys. \
             Is the checkpoint directory another deployment's, or were the signing keys replaced?",
            dir.display()
        )
    })?;
    if !problems.is_empty() {
        anyhow::bail!(
            "the evidence chains no longer hold what the latest checkpoint in {} saw: {}. Run \
             `countersign audit verify`; the server starts again once the chains hold it (restore the \
             database) or the checkpoint is moved aside deliberately.",
            dir.display(),
            problems.join("; ")
        );
    }
    Ok(())
}

/// Serves until Ctrl-C or SIGTERM, with the background upkeep running beside the router.
pub async fn serve(config: ServeConfig, store: Store) -> anyhow::Result<()> {
    config
        .check_placement(store.url())
        .map_err(anyhow::Error::msg)?;
    let server = build(&config, store.clone(), Arc::new(clock::SystemClock)).await?;
    let checkpoints = Arc::new(
        server
            .ciba
            .checkpoints(config.data.checkpoint_dir(store.url())),
    );
    refuse_changed_evidence(&checkpoints, &config.data.checkpoint_dir(store.url())).await?;
    spawn_upkeep(server.ciba.clone(), Some(checkpoints.clone()));
    if store.backend() == Backend::Postgres {
        spawn_decision_listener(server.ciba.clone(), store.url().to_owned());
    }
    if let Some(token) = server
        .invitations
        .first_admin_link(clock::SystemClock.now())
        .await?
    {
        // Printed, not logged: the link is a one-time secret for whoever started the server.
        println!(
            "\nNo admin yet. Open this link within 24 hours to enroll the first admin:\n\n  {}{}\n",
            config.public_url.as_str().trim_end_matches('/'),
            identity::invitations::enrollment_path(&token)
        );
    }
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    tracing::info!(addr = %config.addr, public_url = %config.public_url, "Countersign is serving");
    // The peer's address, for the limits per address.
    axum::serve(
        listener,
        server
            .router
            .into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    if let Err(e) = checkpoints.write_if_moved(clock::SystemClock.now()).await {
        tracing::error!(error = %e, "no checkpoint written at shutdown");
    }
    store.close().await;
    Ok(())
}

/// How often the retention sweep runs (see `store::retention`).
const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// How often the chains' heads are checked for a new checkpoint.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(60);

/// Every second: pick up client and key changes from other processes, forget expired poll state.
/// Every minute, and at start: a checkpoint if the evidence chains grew. Every ten minutes, and at
/// start: delete what has ended.
pub fn spawn_upkeep(ciba: Arc<Ciba>, checkpoints: Option<Arc<ciba::checkpoint::CheckpointWriter>>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last_sweep: Option<tokio::time::Instant> = None;
        let mut last_checkpoint: Option<tokio::time::Instant> = None;
        loop {
            tick.tick().await;
            if let Err(e) = ciba.refresh().await {
                tracing::warn!(error = %e, "periodic refresh failed; retrying");
            }
            if let Err(e) = ciba.escalate_due().await {
                tracing::warn!(error = %e, "escalating requests failed; retrying");
            }
            if let Some(writer) = &checkpoints {
                if last_checkpoint.is_none_or(|at| at.elapsed() >= CHECKPOINT_EVERY) {
                    last_checkpoint = Some(tokio::time::Instant::now());
                    if let Err(e) = writer.write_if_moved(ciba.now()).await {
                        tracing::error!(error = %e, "checkpoint not written; retrying");
                    }
                }
            }
            if last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
                last_sweep = Some(tokio::time::Instant::now());
                match ciba.sweep().await {
                    Ok(swept) => tracing::debug!(?swept, "retention sweep"),
                    Err(e) => tracing::warn!(error = %e, "retention sweep failed; retrying later"),
                }
            }
        }
    });
}

/// On PostgreSQL, several instances share the database: decisions and new requests are announced
/// with NOTIFY, and every instance's poll cache and open inboxes listen. A lost connection may have
/// lost announcements, so the cache is then distrusted once and every inbox reloads.
pub fn spawn_decision_listener(ciba: Arc<Ciba>, url: String) {
    use ciba::pending::{DECISION_CHANNEL, INBOX_CHANNEL};
    tokio::spawn(async move {
        loop {
            match sqlx::postgres::PgListener::connect(&url).await {
                Ok(mut listener) => {
                    if let Err(e) = listener.listen_all([DECISION_CHANNEL, INBOX_CHANNEL]).await {
                        tracing::warn!(error = %e, "LISTEN failed");
                    } else {
                        ciba.distrust_poll_cache();
                        loop {
                            match listener.try_recv().await {
                                Ok(Some(note)) if note.channel() == DECISION_CHANNEL => {
                                    // `<auth_req_id> <addressee>…`
                                    let mut words = note.payload().split(' ');
                                    let auth_req_id = words.next().unwrap_or_default();
                                    ciba.decided_elsewhere(auth_req_id);
                                    for approver_id in words {
                                        ciba.inbox_changed_elsewhere(approver_id);
                                    }
                                }
                                Ok(Some(note)) => ciba.inbox_changed_elsewhere(note.payload()),
                                Ok(None) => ciba.distrust_poll_cache(),
                                Err(e) => {
                                    tracing::warn!(error = %e, "decision listener lost its connection");
                                    break;
                                }
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "decision listener cannot connect"),
            }
            ciba.distrust_poll_cache();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            sig.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}
