//! The approver's inbox: pending requests, newest first, and recent decisions. It updates live: the
//! server pushes a Server-Sent Event whenever this approver's requests change in the database.
use leptos::prelude::*;

use crate::{
    api::approvals::inbox,
    components::{
        countdown::Countdown,
        layout::{Layout, SignedIn},
        push::{self, PushState},
        statement::SafeText,
    },
    error::UiError,
    model::{InboxView, Me, RequestStatus, RequestSummary},
};

#[component]
pub fn InboxPage() -> impl IntoView {
    let inbox = inbox_resource();
    view! {
        <Layout nav=true>
            <SignedIn>
                <Greeting/>
                <NotificationHint/>
                <section class="card">
                    <InboxList data=inbox/>
                </section>
            </SignedIn>
        </Layout>
    }
}

/// The inbox's data, made by the page itself, outside `SignedIn`: the server renders the content of
/// a `Suspense` more than once, and a resource made inside it would be fetched each time, so the HTML
/// and the data the browser hydrates it with could come from different moments (a request that
/// arrived in between made them differ, and hydration panicked).
pub fn inbox_resource() -> Resource<Result<InboxView, UiError>> {
    Resource::new(|| (), |_| inbox())
}

#[component]
fn Greeting() -> impl IntoView {
    let me = expect_context::<Me>();
    let admin = me.admin;
    view! {
        <h1>"Inbox"</h1>
        <p class="muted">"Signed in as " {me.name} " (" {me.email} ")"</p>
        {admin.then(|| view! { <p class="who"><a href="/admin">"Approval history (admin)"</a></p> })}
    }
}

/// A pointer to the account page's notification switch, shown once the page has found that this
/// browser could receive push notifications but does not (never on the server: it cannot know).
#[component]
fn NotificationHint() -> impl IntoView {
    let (show, set_show) = signal(false);
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            set_show.set(push::state().await == PushState::Off);
        });
    });
    view! {
        <Show when=move || show.get()>
            <p class="hint">
                "Hear of new requests even when this page is closed: "
                <a href="/account#notifications-heading">"turn on notifications on this device"</a>
                "."
            </p>
        </Show>
    }
}

fn status_label(status: RequestStatus) -> &'static str {
    match status {
        RequestStatus::Approved | RequestStatus::Redeemed => "Approved",
        RequestStatus::Denied => "Denied",
        RequestStatus::Expired => "Expired",
        RequestStatus::Pending => "Pending",
    }
}

#[component]
fn Line(item: RequestSummary, now: i64, pending: bool) -> impl IntoView {
    let href = format!("/requests/{}", item.id);
    view! {
        <li>
            <a href=href class="request-line">
                <span class="headline">
                    <strong><SafeText text=item.action.clone() limit=60 inline=true/></strong>
                    " — "
                    <SafeText text=item.target.clone() limit=60 inline=true/>
                </span>
                <span class="meta">
                    <SafeText text=item.client_name.clone() limit=40 inline=true/>
                    " · "
                    {if pending {
                        view! { <Countdown expires_at=item.expires_at now=now/> " left" }.into_any()
                    } else {
                        view! { <span class=format!("badge {}", item.status.name())>{status_label(item.status)}</span> }.into_any()
                    }}
                </span>
            </a>
        </li>
    }
}

/// The two lists, kept current by the live event stream.
#[component]
pub fn InboxList(data: Resource<Result<InboxView, UiError>>) -> impl IntoView {
    live_updates(move || data.refetch());
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                data.get()
                    .map(|result| match result {
                        Ok(view) => {
                            let now = view.now;
                            view! {
                                <h2>"Waiting for you"</h2>
                                {if view.pending.is_empty() {
                                    view! { <p class="muted">"No requests are waiting for your decision."</p> }.into_any()
                                } else {
                                    view! {
                                        <ul class="requests" aria-label="Pending requests">
                                            {view.pending.into_iter().map(|item| view! { <Line item now pending=true/> }).collect_view()}
                                        </ul>
                                    }
                                        .into_any()
                                }}
                                <h2>"Recent decisions"</h2>
                                {if view.recent.is_empty() {
                                    view! { <p class="muted">"Nothing decided yet."</p> }.into_any()
                                } else {
                                    view! {
                                        <ul class="requests" aria-label="Recent decisions">
                                            {view.recent.into_iter().map(|item| view! { <Line item now pending=false/> }).collect_view()}
                                        </ul>
                                    }
                                        .into_any()
                                }}
                            }
                                .into_any()
                        }
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    })
            }}
        </Suspense>
    }
}

/// Calls `changed` whenever the server announces a change to this approver's requests.
fn live_updates(changed: impl Fn() + 'static) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::{closure::Closure, JsCast};
        let Ok(source) = web_sys::EventSource::new("/events/inbox") else {
            return;
        };
        let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| changed());
        source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget();
        let source = send_wrapper::SendWrapper::new(source);
        on_cleanup(move || source.close());
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = changed;
}
