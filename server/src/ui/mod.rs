//! The browser-facing side: the pages' server-function services, the live inbox, push renewal, the
//! site's files, sessions, and the checks and headers every page response gets. It translates between
//! the browser and the domain (`ciba`, `identity`, `notify`); no rule lives here.
use std::sync::Arc;

use axum::Router;
use leptos::prelude::LeptosOptions;
use leptos_axum::{generate_route_list, LeptosRoutes};

use crate::{ciba::Ciba, config::ServeConfig, identity::sessions::DbSessionStore};

pub mod admin;
pub mod approvals;
pub mod assets;
pub mod devices;
pub mod events;
pub mod identity;
pub mod security;

/// What the pages' server functions and event streams reach.
#[derive(Clone)]
pub struct Services {
    pub identity: Arc<identity::IdentityApp>,
    pub approvals: Arc<approvals::ApprovalPages>,
    pub admin: Arc<admin::AdminPages>,
    pub notifications: Arc<devices::PushDevices>,
    pub ciba: Arc<Ciba>,
}

/// The pages, their server functions, the live inbox and push renewal, behind sessions, the
/// same-origin check and the security headers.
pub fn routes(config: &ServeConfig, services: Services, sessions: DbSessionStore) -> Router {
    let site = assets::Site::new(&config.site_root);
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
        let check = Arc::new(events::SessionCheck {
            identity: services.identity.clone(),
            sessions: sessions.clone(),
            streams: Arc::default(),
        });
        let ciba = services.ciba.clone();
        axum::routing::get(move |session: tower_sessions::Session| {
            events::inbox(check.clone(), ciba.clone(), session)
        })
    };
    let console = admin::routes(admin::Console {
        pages: services.admin.clone(),
        identity: services.identity.clone(),
    });
    let renew = {
        let devices = services.notifications.clone();
        axum::routing::post(move |body| devices::renew_handler(devices.clone(), body))
    };
    let stylesheet = app::StylesheetHref(site.stylesheet_href());
    let secure_cookies = app::service::SecureCookies(config.public_url.scheme() == "https");
    let context = move || {
        leptos::prelude::provide_context(stylesheet.clone());
        leptos::prelude::provide_context(secure_cookies);
        leptos::prelude::provide_context(app::service::SignInMemo::default());
        let identity: app::service::SharedIdentity = services.identity.clone();
        let enrollment: app::service::SharedEnrollment = services.identity.clone();
        let passkeys: app::service::SharedPasskeys = services.identity.clone();
        let approvals: app::service::SharedApprovals = services.approvals.clone();
        let notifications: app::service::SharedNotifications = services.notifications.clone();
        let admin: app::service::SharedAdmin = services.admin.clone();
        leptos::prelude::provide_context(admin);
        leptos::prelude::provide_context(identity);
        leptos::prelude::provide_context(enrollment);
        leptos::prelude::provide_context(passkeys);
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
        .merge(console)
        .route("/push/renew", renew)
        .layer(session_layer)
        .layer(axum::middleware::from_fn_with_state(
            security::Origin::of(&config.public_url),
            security::same_origin_only,
        ))
        .layer(axum::middleware::from_fn(security::security_headers))
}
