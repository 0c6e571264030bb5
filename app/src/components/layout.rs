//! The frame around every page: the brand, and for signed-in people the navigation.
use leptos::prelude::*;
use leptos_router::components::Redirect;

use crate::{
    api::identity::{current_user, message},
    model::Me,
};

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
/// else to the sign-in page.
#[component]
pub fn SignedIn(children: ChildrenFn) -> impl IntoView {
    let me = Resource::new(|| (), |_| current_user());
    let children = StoredValue::new(children);
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                me.get()
                    .map(|result| match result {
                        Ok(Some(me)) => {
                            provide_context::<Me>(me);
                            children.read_value()().into_any()
                        }
                        Ok(None) => view! { <Redirect path="/sign-in"/> }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">{message(&e)}</p> }.into_any(),
                    })
            }}
        </Suspense>
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
