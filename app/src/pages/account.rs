//! The account page: the person's passkeys (add, name, remove; never the last one) and signing out.
use leptos::{prelude::*, task::spawn_local};

use crate::{
    api::identity::{
        finish_add_passkey, message, passkeys, remove_passkey, rename_passkey, sign_out,
        start_add_passkey,
    },
    components::{
        layout::{ErrorLine, Layout, SignedIn},
        passkey,
    },
    model::{Me, PasskeyView},
};

#[component]
pub fn AccountPage() -> impl IntoView {
    view! {
        <Layout nav=true>
            <SignedIn>
                <Account/>
            </SignedIn>
        </Layout>
    }
}

#[component]
fn Account() -> impl IntoView {
    let me = expect_context::<Me>();
    let (error, set_error) = signal(None::<String>);
    let (busy, set_busy) = signal(false);
    let (new_name, set_new_name) = signal("Another passkey".to_owned());
    let list = Resource::new(|| (), |_| passkeys());
    let report = move |outcome: Result<(), String>| match outcome {
        Ok(()) => {
            set_error.set(None);
            list.refetch();
        }
        Err(e) => set_error.set(Some(e)),
    };
    let add = move |_| {
        set_busy.set(true);
        let name = new_name.get_untracked();
        spawn_local(async move {
            let outcome = async {
                let options = start_add_passkey().await.map_err(|e| message(&e))?;
                let credential = passkey::create(options).await?;
                finish_add_passkey(credential, name)
                    .await
                    .map_err(|e| message(&e))
            }
            .await;
            set_busy.set(false);
            report(outcome);
        });
    };
    let leave = move |everywhere: bool| {
        spawn_local(async move {
            match sign_out(everywhere).await {
                Ok(()) =>
                {
                    #[cfg(feature = "hydrate")]
                    if let Some(window) = web_sys::window() {
                        let _ = window.location().assign("/sign-in");
                    }
                }
                Err(e) => set_error.set(Some(message(&e))),
            }
        });
    };
    view! {
        <h1>"Account"</h1>
        <p class="muted">{me.name} " · " {me.email} {if me.admin { " · admin" } else { "" }}</p>
        <section class="card">
            <h2>"Your passkeys"</h2>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    list.get()
                        .map(|result| match result {
                            Ok(keys) => {
                                let only_one = keys.len() == 1;
                                view! {
                                    <ul class="passkeys">
                                        {keys
                                            .into_iter()
                                            .map(|key| view! { <PasskeyRow key only_one report/> })
                                            .collect_view()}
                                    </ul>
                                }
                                    .into_any()
                            }
                            Err(e) => view! { <p class="error" role="alert">{message(&e)}</p> }.into_any(),
                        })
                }}
            </Suspense>
            <div class="row">
                <label class="sr-only" for="new-passkey-name">"Name for the new passkey"</label>
                <input id="new-passkey-name" type="text" prop:value=new_name
                    on:input=move |ev| set_new_name.set(event_target_value(&ev))/>
                <button type="button" on:click=add disabled=busy>"Add a passkey"</button>
            </div>
            <ErrorLine message=error/>
        </section>
        <section class="card">
            <h2>"Sign out"</h2>
            <div class="row">
                <button type="button" on:click=move |_| leave(false)>"Sign out"</button>
                <button type="button" class="danger" on:click=move |_| leave(true)>"Sign out everywhere"</button>
            </div>
        </section>
    }
}

#[component]
fn PasskeyRow(
    key: PasskeyView,
    only_one: bool,
    report: impl Fn(Result<(), String>) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let (name, set_name) = signal(key.name.clone());
    let id = StoredValue::new(key.id.clone());
    let rename = move |_| {
        let name = name.get_untracked();
        spawn_local(async move {
            report(
                rename_passkey(id.get_value(), name)
                    .await
                    .map_err(|e| message(&e)),
            )
        });
    };
    let remove = move |_| {
        spawn_local(async move {
            report(
                remove_passkey(id.get_value())
                    .await
                    .map_err(|e| message(&e)),
            )
        });
    };
    let input_id = format!("passkey-{}", key.id);
    view! {
        <li class="passkey">
            <label class="sr-only" for=input_id.clone()>"Passkey name"</label>
            <input id=input_id type="text" prop:value=name on:input=move |ev| set_name.set(event_target_value(&ev))/>
            <span class="muted small">
                {if key.synced { "synced" } else { "this device only" }}
                {key.suspended.then_some(" · suspended: its signature counter went backwards")}
            </span>
            <div class="row">
                <button type="button" on:click=rename>"Save name"</button>
                <button type="button" class="danger" on:click=remove disabled=only_one
                    title=if only_one { "Your last passkey cannot be removed" } else { "" }>
                    "Remove"
                </button>
            </div>
        </li>
    }
}
