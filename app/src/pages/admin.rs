//! The admin console's pages: the history of every request, filtered by what the URL says (so a
//! view can be shared), a page at a time; and one request in full, with its decision record and that
//! record's checks. The server refuses all of it to anyone but an admin and renders the content
//! itself (`admin_html`); these pages place it, and tell anyone else politely.
use leptos::{prelude::*, task::spawn_local};
use leptos_router::hooks::use_location;

use crate::{
    api::admin::{admin_content, confirm_admin_change, start_admin_change},
    components::{
        layout::{ErrorLine, Layout, SignedIn},
        passkey,
    },
    error::UiError,
    model::Me,
};

/// Every admin page: the server renders its content for the path and query in the address bar.
/// On `/admin/confirm` the page adds the one thing the server cannot render: the passkey prompt.
#[component]
pub fn AdminPage() -> impl IntoView {
    let location = use_location();
    let content = Resource::new(
        move || (location.pathname.get(), location.search.get()),
        |(path, query)| admin_content(path, query),
    );
    let confirming = move || location.pathname.get().trim_end_matches('/') == "/admin/confirm";
    view! {
        <Layout nav=true>
            <SignedIn>
                <AdminsOnly>
                    <ServerRendered content/>
                    <Show when=move || confirming() && matches!(content.get(), Some(Ok(_)))>
                        <ConfirmChange/>
                    </Show>
                </AdminsOnly>
            </SignedIn>
        </Layout>
    }
}

/// Confirms the waiting change with a passkey, then returns to the page it was asked from: a whole
/// page load, as after the console's forms, so the outcome the server keeps for that page is read
/// once, by that page.
#[component]
fn ConfirmChange() -> impl IntoView {
    let (error, set_error) = signal(None::<String>);
    let (busy, set_busy) = signal(false);
    let confirm = move |_| {
        set_busy.set(true);
        spawn_local(async move {
            let outcome = async {
                let options = start_admin_change().await.map_err(|e| e.to_string())?;
                let assertion = passkey::get(options).await?;
                confirm_admin_change(assertion)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            set_busy.set(false);
            match outcome {
                #[cfg(feature = "hydrate")]
                Ok(back) => {
                    if let Some(window) = web_sys::window() {
                        let _ = window.location().assign(&back);
                    }
                }
                #[cfg(not(feature = "hydrate"))]
                Ok(_) => {}
                Err(e) => set_error.set(Some(e)),
            }
        });
    };
    view! {
        <div class="row">
            <button type="button" class="primary" on:click=confirm disabled=busy>"Confirm with your passkey"</button>
            <form method="post" action="/admin/confirm/cancel" class="inline-form">
                <button type="submit" disabled=busy>"Cancel"</button>
            </form>
        </div>
        <ErrorLine message=error/>
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
