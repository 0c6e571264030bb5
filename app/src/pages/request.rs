//! One request: the plain transaction statement, its context, a countdown, and Approve / Deny, each
//! made with a fresh passkey assertion bound to this decision on this request.
use leptos::{prelude::*, task::spawn_local};
use leptos_router::hooks::use_params_map;

use crate::{
    api::approvals::{finish_decision, request, start_decision},
    components::{
        countdown::{time_left, Countdown},
        layout::{ErrorLine, Layout, SignedIn},
        passkey,
        statement::{SafeText, Shortened, Statement},
    },
    error::UiError,
    model::{Choice, InboxView, RequestView},
    pages::inbox::{inbox_resource, InboxList},
};

#[component]
pub fn RequestPage() -> impl IntoView {
    // Both made here, outside `SignedIn`, for the reason `inbox_resource` gives.
    let inbox = inbox_resource();
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let loaded = Resource::new(id, request);
    view! {
        <Layout nav=true>
            <SignedIn>
                <div class="split">
                    <aside class="inbox-pane" aria-label="Inbox">
                        <InboxList data=inbox/>
                    </aside>
                    <RequestPane loaded inbox/>
                </div>
            </SignedIn>
        </Layout>
    }
}

#[component]
fn RequestPane(
    loaded: Resource<Result<RequestView, UiError>>,
    inbox: Resource<Result<InboxView, UiError>>,
) -> impl IntoView {
    view! {
        <section class="card request">
            <Suspense fallback=|| view! { <p class="muted">"Loading the request…"</p> }>
                {move || {
                    loaded
                        .get()
                        .map(|result| match result {
                            Ok(view) => view! { <Decide request=view inbox/> }.into_any(),
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Suspense>
        </section>
    }
}

/// What the page says when a request's time runs out on it, whatever the last answer from the
/// server said (the server says what it says of every other outcome).
const EXPIRED: &str = "This request has expired. Nothing was approved; the agent must ask again.";

/// `inbox` is read again whenever the server says this approver's requests changed: someone else may
/// have decided this one (a group's, or a quorum's), so the request is read again then too.
#[component]
fn Decide(request: RequestView, inbox: Resource<Result<InboxView, UiError>>) -> impl IntoView {
    let (current, set_current) = signal(request.clone());
    let (error, set_error) = signal(None::<String>);
    let (busy, set_busy) = signal(false);
    let (reason, set_reason) = signal(String::new());
    let (user_code, set_user_code) = signal(String::new());
    let left = time_left(request.expires_at, request.now);
    // Counted by every shortened text below as it renders.
    let shortened = RwSignal::new(0usize);
    provide_context(Shortened(shortened));
    let all_shown = move || shortened.get() == 0;
    let pending = move || current.with(|r| r.outcome.is_none()) && left.get() > 0;
    // The request as the server has it now.
    let reload = move || {
        let id = current.with_untracked(|r| r.id.clone());
        spawn_local(async move {
            if let Ok(view) = crate::api::approvals::request(id).await {
                set_current.set(view);
            }
        });
    };
    // Read again when the server announces a change, unless a decision is under way here (its
    // answer brings the request as it then is).
    Effect::new(move |seen: Option<()>| {
        inbox.track();
        if seen.is_some() && !busy.get_untracked() {
            reload();
        }
    });
    let decide = move |choice: Choice| {
        set_busy.set(true);
        set_error.set(None);
        let id = current.with_untracked(|r| r.id.clone());
        let code = (choice == Choice::Approve && current.with_untracked(|r| r.needs_user_code))
            .then(|| user_code.get_untracked());
        spawn_local(async move {
            let outcome = async {
                let options = start_decision(id.clone(), choice.clone(), code)
                    .await
                    .map_err(|e| e.to_string())?;
                let credential = passkey::get(options).await?;
                finish_decision(id, choice, credential)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            set_busy.set(false);
            match outcome {
                Ok(view) => set_current.set(view),
                Err(e) => {
                    set_error.set(Some(e));
                    // The request may have moved on (decided elsewhere, expired, user code locked).
                    reload();
                }
            }
        });
    };
    let r = request;
    view! {
        <h1 class="sr-only">"Request"</h1>
        <p class="eyebrow">"Approval requested by " <strong><SafeText text=r.client_name.clone() limit=60/></strong></p>
        <div class="statement-box">
            <Statement request=r.clone()/>
        </div>
        <dl class="facts">
            {r.binding_message.clone().map(|m| view! {
                <dt>"Code shown by the agent"</dt>
                <dd><code class="binding">{m}</code></dd>
            })}
            <dt>"Time left"</dt>
            <dd><Countdown expires_at=r.expires_at now=r.now/></dd>
            <dt>"Scopes"</dt>
            <dd>{r.scope.clone()}</dd>
        </dl>
        <p class="parties">{move || current.with(|r| r.parties.join(" "))}</p>
        <Show
            when=pending
            fallback=move || {
                view! {
                    <p class="outcome" role="status">
                        {move || current.with(|r| r.outcome.clone().unwrap_or_else(|| EXPIRED.to_owned()))}
                    </p>
                }
            }
        >
            <Show when=move || current.with(|r| r.needs_user_code && !r.user_code_locked)>
                <label for="user-code">"Your user code (needed to approve)"</label>
                <input id="user-code" type="password" autocomplete="off" autocapitalize="off" spellcheck="false"
                    prop:value=user_code on:input=move |ev| set_user_code.set(event_target_value(&ev))/>
            </Show>
            <Show when=move || current.with(|r| r.user_code_locked)>
                <p class="warning">"Too many wrong user codes were entered. This request can only be denied."</p>
            </Show>
            <Show when=move || !all_shown()>
                <p class="warning">"Part of this request is shortened above. Show all of it before approving."</p>
            </Show>
            <div class="decide">
                <button type="button" class="approve" on:click=move |_| decide(Choice::Approve)
                    disabled=move || busy.get() || !all_shown() || current.with(|r| r.user_code_locked)>
                    "Approve with passkey"
                </button>
                <button type="button" class="deny" on:click=move |_| decide(Choice::Deny {
                    reason: Some(reason.get_untracked()).filter(|r| !r.trim().is_empty()),
                }) disabled=busy>
                    "Deny"
                </button>
            </div>
            <label for="deny-reason">"Reason for denying (optional)"</label>
            <input id="deny-reason" type="text" prop:value=reason on:input=move |ev| set_reason.set(event_target_value(&ev))/>
        </Show>
        <ErrorLine message=error/>
    }
}
