//! Countersign's browser UI: the application shell and routes, rendered on the server (`ssr`) and
//! hydrated in the browser (`hydrate`).
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    ParamSegment, SsrMode, StaticSegment, WildcardSegment,
};

#[cfg(feature = "ssr")]
pub mod admin_html;
pub mod api;
pub mod components;
pub mod error;
pub mod model;
pub mod navigation;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod service;
pub mod text;

/// The HTML document around every page; the server renders it, the browser hydrates `<App/>`.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    page_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="theme-color" content="#1f4fd1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <link rel="manifest" href="/manifest.webmanifest"/>
                <link rel="apple-touch-icon" href="/icons/icon-192.png"/>
                <link rel="stylesheet" href=stylesheet_href()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The stylesheet's address. The server provides it as context: the site build names the file by its
/// content, so browsers may cache it for good.
#[derive(Clone, Debug)]
pub struct StylesheetHref(pub String);

fn stylesheet_href() -> String {
    expect_context::<StylesheetHref>().0
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title text="Countersign"/>
        <Router>
            <Routes fallback=pages::not_found::NotFound>
                <Route path=StaticSegment("") view=pages::home::HomePage/>
                <Route path=StaticSegment("sign-in") view=pages::sign_in::SignInPage/>
                <Route path=(StaticSegment("enroll"), ParamSegment("token")) view=pages::enroll::EnrollPage/>
                // Async: the sign-in check finishes before the first byte, so a redirect is a real 302.
                <Route path=StaticSegment("inbox") view=pages::inbox::InboxPage ssr=SsrMode::Async/>
                <Route path=StaticSegment("account") view=pages::account::AccountPage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("requests"), ParamSegment("id")) view=pages::request::RequestPage ssr=SsrMode::Async/>
                // Every admin page is one component, which asks the server for the content of the
                // path (an unknown one is the server's 404): one route, not one per page, keeps the
                // router's code out of the bundle.
                <Route path=StaticSegment("admin") view=pages::admin::AdminPage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("admin"), WildcardSegment("page")) view=pages::admin::AdminPage ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}

/// The Content-Security-Policy: only this origin's scripts, and with a nonce also the inline scripts
/// that carry it (hydration and streamed resources). Pages get it with their response's nonce; the
/// server gives every other UI response the same policy without one.
#[cfg(feature = "ssr")]
pub fn content_security_policy(nonce: Option<&str>) -> String {
    let inline = nonce.map(|n| format!(" 'nonce-{n}'")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{inline}; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    )
}

/// Puts the page's policy, with this response's nonce, on the response.
#[cfg(feature = "ssr")]
fn page_security_policy() {
    let Some(nonce) = use_nonce() else {
        return;
    };
    let Some(response) = use_context::<leptos_axum::ResponseOptions>() else {
        return;
    };
    let policy = content_security_policy(Some(&nonce.to_string()));
    if let Ok(value) = http::HeaderValue::from_str(&policy) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    hydrate_body(App);
    components::push::register_worker();
    // Tests and benchmarks wait for this mark: from here on, buttons have their handlers.
    if let Some(root) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = root.set_attribute("data-hydrated", "");
    }
}
