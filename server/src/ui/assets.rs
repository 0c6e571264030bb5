//! The site's files: the wasm bundle, its glue and the stylesheet under content-hashed names in `/pkg`
//! (cached for a year: a new build has new names), the public files under stable names (revalidated on
//! each use), each served from the brotli or gzip copy the build made when the browser accepts it.
use std::{convert::Infallible, path::PathBuf};

use axum::{
    body::Body,
    http::{header, HeaderValue, Request},
    response::Response,
    Router,
};
use tower::{util::BoxCloneSyncService, ServiceBuilder, ServiceExt};
use tower_http::{services::ServeDir, set_header::SetResponseHeaderLayer};

/// The built site (see `scripts/site.mjs`).
pub struct Site {
    root: PathBuf,
    /// `hash.txt`'s lines (`js: …`, `wasm: …`, `css: …`), if the build wrote it.
    hashes: Option<String>,
}

/// A service that answers every request: the 404 page given to [`Site::router`], and what it serves.
pub type Fallback = BoxCloneSyncService<Request<Body>, Response, Infallible>;

const HASH_FILE: &str = "hash.txt";

const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
const REVALIDATE: HeaderValue = HeaderValue::from_static("no-cache");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

impl Site {
    pub fn new(root: &str) -> Site {
        let root = std::path::absolute(root).unwrap_or_else(|_| PathBuf::from(root));
        let hashes = std::fs::read_to_string(root.join(HASH_FILE)).ok();
        Site { root, hashes }
    }

    /// The list of hashed names the build wrote, if it did: Leptos reads it (`hash_file`) to name the
    /// bundle in each page.
    pub fn hash_file(&self) -> Option<String> {
        self.hashes
            .as_ref()
            .map(|_| self.root.join(HASH_FILE).to_string_lossy().into_owned())
    }

    /// The stylesheet's address for the pages.
    pub fn stylesheet_href(&self) -> String {
        let hash = self.hashes.as_deref().and_then(|hashes| {
            hashes
                .lines()
                .find_map(|line| line.strip_prefix("css:"))
                .map(str::trim)
        });
        match hash {
            Some(hash) => format!("/pkg/countersign.{hash}.css"),
            None => "/pkg/countersign.css".to_owned(),
        }
    }

    /// `/pkg`, where the build puts only hashed names, which never change, and the files under stable
    /// names (the service worker, manifest, icons), which browsers revalidate (`Last-Modified`) so a
    /// new release is seen at once. Anything else, a stale hashed name too, goes to `not_found`, which
    /// renders the app's 404 page, stored nowhere.
    pub fn router(&self, not_found: Fallback) -> Router {
        let not_found = ServiceBuilder::new()
            .layer(SetResponseHeaderLayer::overriding(
                header::CACHE_CONTROL,
                NO_STORE,
            ))
            .service(not_found);
        // Without the list of hashed names the build was not a hashed one: nothing is forever.
        let bundle_cache = if self.hashes.is_some() {
            IMMUTABLE
        } else {
            REVALIDATE
        };
        Router::new()
            .nest_service(
                "/pkg",
                serve(self.root.join("pkg"), not_found.clone(), bundle_cache),
            )
            .fallback_service(serve(self.root.clone(), not_found, REVALIDATE))
    }
}

/// The files in `dir`, each from its brotli or gzip copy when the browser takes it (caches must keep
/// those answers apart: `Vary`), with `cache` as their caching rule.
fn serve<F>(dir: PathBuf, not_found: F, cache: HeaderValue) -> Fallback
where
    F: tower::Service<Request<Body>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    F::Future: Send + 'static,
{
    let files = ServeDir::new(dir)
        .precompressed_br()
        .precompressed_gzip()
        .fallback(not_found);
    let service = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            header::VARY,
            HeaderValue::from_static("accept-encoding"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            cache,
        ))
        .service(files)
        .map_response(|response| response.map(Body::new));
    BoxCloneSyncService::new(service)
}
