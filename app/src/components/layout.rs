//! The frame around every page: the brand, and for signed-in people the navigation.
use leptos::prelude::*;
use leptos_router::{components::Redirect, hooks::use_location};

use crate::{api::identity::current_user, model::Me, navigation};

#[component]
pub fn Layout(#[prop(optional)] nav: bool, children: Children) -> impl IntoView {
    view! {
        <header class="topbar">
            <a class="brand-link" href="/">"Countersign"</a>
            <Show when=move || nav>
                <nav aria-label="Main">
                    <a href="/inbox">"Inbox"</a>
                    <a href="/account">"Account"</a>
                </nav>
            </Show>
        </header>
        <main class="page">{children()}</main>
    }
}

/// Renders `children` for a signed-in person (available to them as `Me` context), and sends everyone
/// else to the sign-in page, which brings them back here afterwards.
#[component]
pub fn SignedIn(children: ChildrenFn) -> impl IntoView {
    let me = Resource::new(|| (), |_| current_user());
    let children = StoredValue::new(children);
    let location = use_location();
    let sign_in = move || {
        let (path, query) = (
            location.pathname.get_untracked(),
            location.search.get_untracked(),
        );
        let here = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        navigation::sign_in_then(&here)
    };
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                me.get()
                    .map(|result| match result {
                        Ok(Some(me)) => {
                            provide_context::<Me>(me);
                            children.read_value()().into_any()
                        }
                        Ok(None) => {
                            found();
                            view! { <Redirect path=sign_in()/> }.into_any()
                        }
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    })
            }}
        </Suspense>
    }
}

/// A page that needs a session answers a browser's request for it with a real `302 Found`, whatever
/// its `Accept` header says (leptos_axum's redirect sets the status only for `text/html`).
fn found() {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::FOUND);
    }
}

/// An error line that screen readers announce.
#[component]
pub fn ErrorLine(message: ReadSignal<Option<String>>) -> impl IntoView {
    view! {
        <Show when=move || message.get().is_some()>
            <p class="error" role="alert">{move || message.get()}</p>
        </Show>
    }
}
