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
use tower::{util::BoxCloneSyncService, ServiceBuilder};
use tower_http::{services::ServeDir, set_header::SetResponseHeaderLayer};

/// The built site (see `scripts/site.mjs`).
pub struct Site {
    root: PathBuf,
    /// `hash.txt`'s lines (`js: …`, `wasm: …`, `css: …`), if the build wrote it.
    hashes: Option<String>,
}

/// A service that answers every request (for the fallback of [`Site::public_files`]).
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

    /// `/pkg`: only hashed names are put there by the build, so they never change.
    pub fn bundle(&self) -> Router {
        let files = precompressed(ServeDir::new(self.root.join("pkg")));
        Router::new().fallback_service(
            ServiceBuilder::new()
                .layer(vary_accept_encoding())
                .layer(SetResponseHeaderLayer::overriding(
                    header::CACHE_CONTROL,
                    IMMUTABLE,
                ))
                .service(files),
        )
    }

    /// Files under stable names (the service worker, manifest, icons): browsers revalidate them
    /// (`Last-Modified`) so a new release is seen at once. Anything else goes to `not_found`, which
    /// renders the app's 404 page, stored nowhere.
    pub fn public_files(&self, not_found: Fallback) -> Router {
        let not_found = ServiceBuilder::new()
            .layer(SetResponseHeaderLayer::overriding(
                header::CACHE_CONTROL,
                NO_STORE,
            ))
            .service(not_found);
        let files = precompressed(ServeDir::new(&self.root)).fallback(not_found);
        Router::new().fallback_service(
            ServiceBuilder::new()
                .layer(vary_accept_encoding())
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::CACHE_CONTROL,
                    REVALIDATE,
                ))
                .service(files),
        )
    }
}

fn precompressed<F>(dir: ServeDir<F>) -> ServeDir<F> {
    dir.precompressed_br().precompressed_gzip()
}

/// Caches must keep the brotli, gzip and plain answers apart.
fn vary_accept_encoding() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(header::VARY, HeaderValue::from_static("accept-encoding"))
}
