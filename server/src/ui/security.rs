//! Browser-facing HTTP hardening for the UI routes: security headers on every response, and a same-origin
//! check on every state-changing request (CSRF), on top of SameSite=Strict session cookies.
use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

/// The scheme, host and port that browsers send as `Origin` for this server's own pages.
#[derive(Clone, Debug)]
pub struct Origin(String);

impl Origin {
    pub fn of(public_url: &url::Url) -> Origin {
        Origin(public_url.origin().ascii_serialization())
    }
}

/// Refuses POST/PUT/PATCH/DELETE unless the browser says the request comes from this site: `Origin`
/// equals the public origin, or, when it is absent or `null`, `Sec-Fetch-Site: same-origin`. (Under
/// this site's `Referrer-Policy: no-referrer` a browser sends `Origin: null` with a form's POST; a
/// page cannot set `Sec-Fetch-Site`, and another site's form gets `cross-site` there.)
pub async fn same_origin_only(
    State(origin): State<Origin>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let fetched_from_here = || {
        headers
            .get("sec-fetch-site")
            .is_some_and(|v| v == "same-origin")
    };
    let same_origin = match headers.get(header::ORIGIN) {
        Some(value) if value == "null" => fetched_from_here(),
        Some(value) => value.as_bytes() == origin.0.as_bytes(),
        None => fetched_from_here(),
    };
    if !same_origin {
        tracing::warn!(
            path = loggable_path(request.uri().path()),
            "refused a cross-site state-changing request"
        );
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    next.run(request).await
}

/// The pages' policy without a nonce, built once.
static NONCELESS_POLICY: std::sync::LazyLock<HeaderValue> = std::sync::LazyLock::new(|| {
    HeaderValue::from_str(&app::content_security_policy(None))
        .expect("the policy is a valid header value")
});

/// Security headers for pages and assets. Scripts: this origin, WebAssembly compilation, and the inline
/// hydration scripts, which carry the per-response nonce the app puts into its own CSP header.
/// Pages, server-function answers and event streams show a person's data: unless a response says how
/// it may be cached (the site's files do), it is stored nowhere.
pub async fn security_headers(request: Request<Body>, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert_with(|| NONCELESS_POLICY.clone());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// With an https public URL, every answer (pages and the agent API alike) tells browsers to use
/// nothing else for a year (RFC 6797); over plain http the header would be ignored, so it is left off.
pub fn strict_transport_security(
    public_url: &url::Url,
) -> Option<tower_http::set_header::SetResponseHeaderLayer<HeaderValue>> {
    (public_url.scheme() == "https").then(|| {
        tower_http::set_header::SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        )
    })
}

/// Requests slower than this are logged.
const SLOW: std::time::Duration = std::time::Duration::from_secs(1);

/// Logs every request that took longer than a second to answer (method, path and status; never the
/// query or body): agents expect answers in milliseconds, and a slow one should leave a trace.
pub async fn log_slow_requests(request: Request<Body>, next: Next) -> Response {
    let started = std::time::Instant::now();
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    if elapsed > SLOW {
        tracing::warn!(%method, path = loggable_path(uri.path()), status = response.status().as_u16(), elapsed_ms = elapsed.as_millis() as u64, "slow request");
    }
    response
}

/// `path` with whatever may be a secret taken out: an enrollment link's token, and any segment long
/// and random enough to be a token or an identifier that works as one.
fn loggable_path(path: &str) -> String {
    let mut previous = "";
    path.split('/')
        .map(|segment| {
            let secret = previous == "enroll"
                || (segment.len() >= 20
                    && segment
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            previous = segment;
            if secret {
                "…"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slow_request_log_leaves_tokens_out() {
        let token = "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eA";
        assert_eq!(loggable_path(&format!("/enroll/{token}")), "/enroll/…");
        assert_eq!(loggable_path("/enroll/short"), "/enroll/…");
        assert_eq!(
            loggable_path(&format!("/admin/requests/{token}")),
            "/admin/requests/…"
        );
        assert_eq!(loggable_path("/bc-authorize"), "/bc-authorize");
        assert_eq!(loggable_path("/admin/agents"), "/admin/agents");
    }

    #[test]
    fn pages_and_other_responses_share_one_policy() {
        let rest = "style-src 'self'; img-src 'self' data:; connect-src 'self'; worker-src 'self'; \
                    manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; \
                    object-src 'none'";
        assert_eq!(
            NONCELESS_POLICY.to_str().unwrap(),
            format!("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; {rest}")
        );
        assert_eq!(
            app::content_security_policy(Some("n0nce")),
            format!(
                "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' 'nonce-n0nce'; {rest}"
            )
        );
    }

    #[tokio::test]
    async fn only_this_sites_pages_may_post() {
        use tower::ServiceExt;
        let app = axum::Router::new()
            .route("/x", axum::routing::post(|| async { "done" }))
            .layer(axum::middleware::from_fn_with_state(
                Origin::of(&"https://cs.example".parse().unwrap()),
                same_origin_only,
            ));
        let post = |headers: &[(&str, &str)]| {
            let mut request = axum::http::Request::post("/x");
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let app = app.clone();
            async move {
                app.oneshot(request.body(Body::empty()).unwrap())
                    .await
                    .unwrap()
                    .status()
            }
        };
        let site = ("sec-fetch-site", "same-origin");
        let other = ("sec-fetch-site", "cross-site");
        assert_eq!(
            post(&[("origin", "https://cs.example")]).await,
            StatusCode::OK
        );
        assert_eq!(
            post(&[("origin", "null"), site]).await,
            StatusCode::OK,
            "a form under no-referrer"
        );
        assert_eq!(post(&[site]).await, StatusCode::OK);
        assert_eq!(
            post(&[("origin", "https://evil.example"), site]).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            post(&[("origin", "null"), other]).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(post(&[("origin", "null")]).await, StatusCode::FORBIDDEN);
        assert_eq!(post(&[]).await, StatusCode::FORBIDDEN);
    }
}
