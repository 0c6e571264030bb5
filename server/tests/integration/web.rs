//! Browser-facing HTTP as a browser sees it: the bundle under hashed names, cached for a year and served
//! from the build's brotli or gzip copy, HSTS under an https public URL, and signed-in pages rendered
//! from one fetch of their data.
use axum::{
    body::Body,
    http::{header, Request, StatusCode},
};

use crate::{common::*, on_both_databases};

on_both_databases!(
    the_bundle_is_served_precompressed_and_immutable,
    an_https_public_url_adds_strict_transport_security,
    a_signed_in_page_is_rendered_from_one_fetch_of_its_data
);

/// A built site as scripts/site.mjs leaves it, with copies whose contents tell them apart.
fn fake_site() -> tempfile::TempDir {
    let site = tempfile::tempdir().unwrap();
    let pkg = site.path().join("pkg");
    std::fs::create_dir(&pkg).unwrap();
    let files = [
        ("pkg/countersign.00aa.wasm", "plain wasm"),
        ("pkg/countersign.00aa.wasm.br", "brotli copy"),
        ("pkg/countersign.00aa.wasm.gz", "gzip copy"),
        ("pkg/countersign.00bb.js", "export default 1;"),
        ("pkg/countersign.00cc.css", "body {}"),
        ("sw.js", "self.addEventListener('push', () => {});"),
        ("hash.txt", "js: 00bb\nwasm: 00aa\ncss: 00cc\n"),
    ];
    for (path, text) in files {
        std::fs::write(site.path().join(path), text).unwrap();
    }
    site
}

async fn get_with(h: &Harness, path: &str, headers: &[(header::HeaderName, &str)]) -> Response {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    h.send(request.body(Body::empty()).unwrap()).await
}

async fn the_bundle_is_served_precompressed_and_immutable(db: Db) {
    let site = fake_site();
    let h = Harness::with_config(db, |c| {
        c.site_root = site.path().to_string_lossy().into_owned();
    })
    .await;

    let wasm = "/pkg/countersign.00aa.wasm";
    for (accept, body, encoding) in [
        ("gzip, deflate, br", "brotli copy", Some("br")),
        ("gzip", "gzip copy", Some("gzip")),
        ("identity", "plain wasm", None),
    ] {
        let r = get_with(&h, wasm, &[(header::ACCEPT_ENCODING, accept)]).await;
        assert_eq!(r.status, StatusCode::OK, "{accept}");
        assert_eq!(r.text, body, "{accept}");
        assert_eq!(
            r.headers
                .get(header::CONTENT_ENCODING)
                .map(|v| v.to_str().unwrap()),
            encoding
        );
        assert_eq!(r.headers[header::CONTENT_TYPE], "application/wasm");
        assert_eq!(
            r.headers[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(r.headers[header::VARY], "accept-encoding");
    }

    // A file under a stable name is revalidated, never kept as is.
    let worker = h.get("/sw.js").await;
    assert_eq!(worker.status, StatusCode::OK);
    assert_eq!(worker.headers[header::CACHE_CONTROL], "no-cache");
    assert!(worker.headers.contains_key(header::LAST_MODIFIED));
    // (Pages, the 404 page and redirects render the app: end2end/tests/bundle.spec.ts checks them
    // against the real server, where one runtime renders; several test runtimes in one process do
    // not share Leptos's executor.)
}

async fn an_https_public_url_adds_strict_transport_security(db: Db) {
    let h = Harness::with_config(db, |c| {
        c.public_url = "https://countersign.example".parse().unwrap();
    })
    .await;
    for path in ["/.well-known/openid-configuration", "/jwks.json"] {
        let r = h.get(path).await;
        assert_eq!(
            r.headers[header::STRICT_TRANSPORT_SECURITY],
            "max-age=31536000",
            "{path}"
        );
    }

    let plain = Harness::new(Db::Sqlite).await;
    let r = plain.get("/.well-known/openid-configuration").await;
    assert!(!r.headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
}

/// A page behind `SignedIn` fetches its data once per render. The server renders a `Suspense`'s
/// content more than once; a resource made inside it was fetched each time, and when a request
/// arrived between two fetches the HTML and the data the browser hydrates it with differed, and
/// hydration panicked. The data each resource resolved to is in the page once.
async fn a_signed_in_page_is_rendered_from_one_fetch_of_its_data(db: Db) {
    let h = Harness::new(db).await;
    let jane = h.approver(APPROVER, None).await;
    let agent = h.poll_client().await;
    let id = h.start(&agent, APPROVER).await;
    let cookie = signed_in_session(&h, &jane.id).await;
    // Who is signed in, then the page's own: the inbox; the inbox and the request; the passkeys.
    for (path, resources) in [
        ("/inbox".to_owned(), 2),
        (format!("/requests/{id}"), 3),
        ("/account".to_owned(), 2),
    ] {
        let page = get_with(&h, &path, &[(header::COOKIE, &cookie)]).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        let resolved = page.text.matches("__RESOLVED_RESOURCES[").count();
        assert_eq!(resolved, resources, "{path}: {}", page.text);
        let inbox_fetches = page.text.matches(r#"{\"Ok\":{\"pending\":"#).count();
        assert_eq!(inbox_fetches, usize::from(path != "/account"), "{path}");
    }
}
