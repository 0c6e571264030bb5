//! Browser-facing HTTP as a browser sees it: the bundle under hashed names, cached for a year and served
//! from the build's brotli or gzip copy; pages stored nowhere; a real 302 to sign-in with the way back;
//! HSTS under an https public URL.
use axum::{
    body::Body,
    http::{header, Request, StatusCode},
};

use crate::{common::*, on_both_databases};

on_both_databases!(
    the_bundle_is_served_precompressed_and_immutable,
    pages_are_stored_nowhere_and_protected_ones_redirect_to_sign_in,
    an_https_public_url_adds_strict_transport_security
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

    // Pages name the hashed files the build listed.
    let page = h.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    for name in [
        "/pkg/countersign.00bb.js",
        "/pkg/countersign.00aa.wasm",
        "/pkg/countersign.00cc.css",
    ] {
        assert!(
            page.text.contains(name),
            "{name} missing from {}",
            page.text
        );
    }

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
    // A name from another build is a 404 that nobody keeps (it may exist after the next deploy).
    let stale = h.get("/pkg/countersign.ffff.wasm").await;
    assert_eq!(stale.status, StatusCode::NOT_FOUND);
    assert_eq!(stale.headers[header::CACHE_CONTROL], "no-store");

    // A file under a stable name is revalidated, never kept as is.
    let worker = h.get("/sw.js").await;
    assert_eq!(worker.status, StatusCode::OK);
    assert_eq!(worker.headers[header::CACHE_CONTROL], "no-cache");
    assert!(worker.headers.contains_key(header::LAST_MODIFIED));
}

async fn pages_are_stored_nowhere_and_protected_ones_redirect_to_sign_in(db: Db) {
    let h = Harness::new(db).await;
    let start = h.get("/").await;
    assert_eq!(start.status, StatusCode::OK);
    assert_eq!(start.headers[header::CACHE_CONTROL], "no-store");

    // Whatever the browser accepts, a page that needs a session is a real redirect.
    for accept in ["text/html", "*/*"] {
        let inbox = get_with(&h, "/inbox", &[(header::ACCEPT, accept)]).await;
        assert_eq!(inbox.status, StatusCode::FOUND, "{accept}");
        assert_eq!(inbox.headers[header::LOCATION], "/sign-in");
        assert_eq!(inbox.headers[header::CACHE_CONTROL], "no-store");
        let request = get_with(&h, "/requests/r1?from=push", &[(header::ACCEPT, accept)]).await;
        assert_eq!(request.status, StatusCode::FOUND, "{accept}");
        assert_eq!(
            request.headers[header::LOCATION],
            "/sign-in?next=/requests/r1%3Ffrom%3Dpush"
        );
    }

    let unknown = h.get("/no/such/page").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.headers[header::CACHE_CONTROL], "no-store");
    assert!(unknown.text.contains("Not found"));

    // A server function's answer about the person is not kept either.
    use leptos::server_fn::ServerFn;
    let me = h
        .send(
            Request::post(<app::api::identity::CurrentUser as ServerFn>::PATH)
                .header(header::ORIGIN, "http://localhost:3000")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.headers[header::CACHE_CONTROL], "no-store");
}

async fn an_https_public_url_adds_strict_transport_security(db: Db) {
    let h = Harness::with_config(db, |c| {
        c.public_url = "https://countersign.example".parse().unwrap();
    })
    .await;
    for path in ["/", "/.well-known/openid-configuration", "/sign-in"] {
        let r = h.get(path).await;
        assert_eq!(
            r.headers[header::STRICT_TRANSPORT_SECURITY],
            "max-age=31536000",
            "{path}"
        );
    }

    let plain = Harness::new(Db::Sqlite).await;
    let r = plain.get("/").await;
    assert!(!r.headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
}
