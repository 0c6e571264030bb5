//! The admin console's pages: the history of every request, filtered by what the URL says (so a
//! view can be shared), a page at a time; and one request in full, with its decision record and that
//! record's checks. The server refuses all of it to anyone but an admin and renders the content
//! itself (`admin_html`); these pages place it, and tell anyone else politely.
use leptos::prelude::*;
use leptos_router::hooks::use_location;

use crate::{
    api::admin::admin_content,
    components::layout::{Layout, SignedIn},
    error::UiError,
    model::Me,
};

/// Every admin page: the server renders its content for the path and query in the address bar.
#[component]
pub fn AdminPage() -> impl IntoView {
    let location = use_location();
    let content = Resource::new(
        move || (location.pathname.get(), location.search.get()),
        |(path, query)| admin_content(path, query),
    );
    view! {
        <Layout nav=true>
            <SignedIn>
                <AdminsOnly>
                    <ServerRendered content/>
                </AdminsOnly>
            </SignedIn>
        </Layout>
    }
}

/// HTML the server rendered (escaped there like any view), or the refusal.
#[component]
fn ServerRendered(content: Resource<Result<String, UiError>>) -> impl IntoView {
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                content
                    .get()
                    .map(|result| match result {
                        Ok(html) => view! { <div inner_html=html></div> }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    })
            }}
        </Suspense>
    }
}

/// Renders `children` for admins; anyone else reads why not, with a 403.
#[component]
fn AdminsOnly(children: ChildrenFn) -> impl IntoView {
    let me = expect_context::<Me>();
    if me.admin {
        children().into_any()
    } else {
        #[cfg(feature = "ssr")]
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(http::StatusCode::FORBIDDEN);
        }
        view! {
            <h1>"Admins only"</h1>
            <p class="error" role="alert">"This page is for admins. Your inbox has the requests waiting for you."</p>
            <p><a href="/inbox">"Go to your inbox"</a></p>
        }
        .into_any()
    }
}
