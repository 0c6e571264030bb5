//! Countersign's server: wires configuration, storage, the CIBA domain, the agent-facing OAuth API and
//! the Leptos UI into one axum router. `main.rs` (the command line) and the integration tests use it.
use std::{sync::Arc, time::Duration};

use axum::Router;
use leptos::prelude::LeptosOptions;
use leptos_axum::{generate_route_list, LeptosRoutes};

pub mod agent;
pub mod ciba;
pub mod clock;
pub mod config;
pub mod events;
pub mod identity;
pub mod notify;
pub mod oauth;
pub mod secrets;
pub mod signing;
pub mod store;
pub mod web;

use ciba::Ciba;
use clock::Clock;
use config::ServeConfig;
use oauth::{AppState, Endpoints};
use store::{Backend, Store};

/// A built server: the domain service and the router that serves it.
pub struct Server {
    pub ciba: Arc<Ciba>,
    pub pusher: Arc<notify::Pusher>,
    pub router: Router,
}

pub async fn build(
    config: &ServeConfig,
    store: Store,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Server> {
    let endpoints = Endpoints::new(&config.public_url);
    let passkeys = identity::passkeys::Passkeys::new(&config.public_url).map_err(|e| {
        anyhow::anyhow!(
            "COUNTERSIGN_PUBLIC_URL {} cannot be a passkey origin ({e}): use a host name such as localhost, not an IP address",
            config.public_url
        )
    })?;
    let max_session_ms = config.session_max_hours * 3_600_000;
    let identity = Arc::new(identity::service::IdentityApp::new(
        store.clone(),
        clock.clone(),
        passkeys,
        max_session_ms,
    ));
    let sessions = identity::sessions::DbSessionStore::new(store.clone());
    identity::passkeys::backfill_key_registry(&store).await?;
    let ciba = Arc::new(
        Ciba::new(
            store,
            clock.clone(),
            config.policy(),
            endpoints.issuer.clone(),
        )
        .await?,
    );
    let approvals = Arc::new(identity::approvals::ApprovalApp::new(
        identity.clone(),
        ciba.clone(),
    ));
    // How far back the notification sweeps look: no request stays pending longer.
    let horizon_ms = config.policy().max_expiry_secs * 1000;
    if let Some(url) = &config.smtp_url {
        let mailer = notify::Mailer::new(url, &config.smtp_from, &config.public_url)?;
        notify::run(
            Arc::new(mailer),
            ciba.store().clone(),
            clock.clone(),
            horizon_ms,
            ciba.subscribe(),
        );
    }
    // The VAPID key is made here at first start, so browsers can subscribe from the first page view.
    let pusher = Arc::new(
        notify::Pusher::new(
            ciba.store().clone(),
            clock.clone(),
            config.push_contact(),
            notify::push::PushServices::parse(&config.push_services),
        )
        .await?,
    );
    pusher.clone().start(horizon_ms, ciba.subscribe()).await;
    let notifications = Arc::new(notify::devices::PushDevices::new(
        identity.clone(),
        pusher.clone(),
    ));
    let services = UiServices {
        identity,
        approvals,
        notifications,
        ciba: ciba.clone(),
    };
    let state = AppState {
        ciba: ciba.clone(),
        endpoints: Arc::new(endpoints),
        replay: Arc::new(oauth::replay::ReplayCache::default()),
    };
    let router = oauth::routes(state)
        .merge(ui_routes(config, services, sessions))
        .layer(axum::middleware::from_fn(web::log_slow_requests))
        .layer(tower::util::option_layer(web::strict_transport_security(
            &config.public_url,
        )));
    Ok(Server {
        ciba,
        pusher,
        router,
    })
}

/// What the pages' server functions and event streams reach.
#[derive(Clone)]
struct UiServices {
    identity: Arc<identity::service::IdentityApp>,
    approvals: Arc<identity::approvals::ApprovalApp>,
    notifications: Arc<notify::devices::PushDevices>,
    ciba: Arc<Ciba>,
}

fn ui_routes(
    config: &ServeConfig,
    services: UiServices,
    sessions: identity::sessions::DbSessionStore,
) -> Router {
    let site = web::assets::Site::new(&config.site_root);
    let hash_file = site.hash_file();
    let options = LeptosOptions::builder()
        .output_name("countersign")
        .site_root(config.site_root.as_str())
        .site_pkg_dir("pkg")
        .site_addr(config.addr)
        .hash_files(hash_file.is_some())
        .hash_file(hash_file.unwrap_or_default().into())
        .build();
    let routes = generate_route_list(app::App);
    let events = {
        let services = services.clone();
        axum::routing::get(move |session: tower_sessions::Session| {
            events::inbox(services.identity.clone(), services.ciba.clone(), session)
        })
    };
    let renew = {
        let devices = services.notifications.clone();
        axum::routing::post(move |body| notify::devices::renew_handler(devices.clone(), body))
    };
    let stylesheet = app::StylesheetHref(site.stylesheet_href());
    let context = move || {
        leptos::prelude::provide_context(stylesheet.clone());
        let identity: app::service::SharedIdentity = services.identity.clone();
        let approvals: app::service::SharedApprovals = services.approvals.clone();
        let notifications: app::service::SharedNotifications = services.notifications.clone();
        leptos::prelude::provide_context(identity);
        leptos::prelude::provide_context(approvals);
        leptos::prelude::provide_context(notifications);
        leptos::nonce::provide_nonce();
    };
    let session_layer = tower_sessions::SessionManagerLayer::new(sessions)
        .with_name("countersign_session")
        .with_secure(config.public_url.scheme() == "https")
        .with_http_only(true)
        .with_same_site(tower_sessions::cookie::SameSite::Strict)
        .with_expiry(tower_sessions::Expiry::OnInactivity(
            time::Duration::minutes(config.session_idle_minutes),
        ));
    let shell = {
        let options = options.clone();
        move || app::shell(options.clone())
    };
    let not_found = {
        use axum::handler::HandlerWithoutStateExt;
        let render = leptos_axum::render_app_to_stream_with_context(context.clone(), shell.clone());
        tower::util::BoxCloneSyncService::new(render.into_service())
    };
    Router::new()
        .leptos_routes_with_context(&options, routes, context, shell)
        .with_state(options)
        .merge(site.router(not_found))
        .route("/events/inbox", events)
        .route("/push/renew", renew)
        .layer(session_layer)
        .layer(axum::middleware::from_fn_with_state(
            web::Origin::of(&config.public_url),
            web::same_origin_only,
        ))
        .layer(axum::middleware::from_fn(web::security_headers))
}

/// Serves until Ctrl-C or SIGTERM, with the background upkeep running beside the router.
pub async fn serve(config: ServeConfig, store: Store) -> anyhow::Result<()> {
    let server = build(&config, store.clone(), Arc::new(clock::SystemClock)).await?;
    spawn_upkeep(server.ciba.clone());
    if store.backend() == Backend::Postgres {
        spawn_decision_listener(server.ciba.clone(), store.url().to_owned());
    }
    if let Some(token) =
        identity::invitations::first_admin_link(&store, clock::SystemClock.now()).await?
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
    axum::serve(listener, server.router)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    store.close().await;
    Ok(())
}

/// Every second: pick up client and key changes from other processes, forget expired poll state.
pub fn spawn_upkeep(ciba: Arc<Ciba>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let Err(e) = ciba.refresh().await {
                tracing::warn!(error = %e, "periodic refresh failed; retrying");
            }
        }
    });
}

/// On PostgreSQL, several instances share the database: decisions recorded by one are announced with
/// NOTIFY, and every instance's poll cache listens. A lost connection may have lost announcements, so
/// the cache is then distrusted once.
pub fn spawn_decision_listener(ciba: Arc<Ciba>, url: String) {
    tokio::spawn(async move {
        loop {
            match sqlx::postgres::PgListener::connect(&url).await {
                Ok(mut listener) => {
                    if let Err(e) = listener.listen(ciba::pending::DECISION_CHANNEL).await {
                        tracing::warn!(error = %e, "LISTEN failed");
                    } else {
                        ciba.distrust_poll_cache();
                        loop {
                            match listener.try_recv().await {
                                Ok(Some(note)) => ciba.decided_elsewhere(note.payload()),
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
