//! The account page: the person's passkeys (how each was added; add, confirmed by an existing one;
//! name; remove, never the last one), the devices that receive push notifications, and signing out.
use leptos::{prelude::*, task::spawn_local};

use crate::{
    api::{
        identity::{
            confirm_add_passkey, finish_add_passkey, passkeys, remove_passkey, rename_passkey,
            sign_out, start_add_passkey, start_confirm_add_passkey,
        },
        notifications::{push_devices, subscribe_push, test_push, unsubscribe_push},
    },
    components::{
        layout::{ErrorLine, Layout, SignedIn},
        passkey,
        push::{self, PushState},
    },
    error::UiError,
    model::{Me, PasskeyView, PushDeviceView, PushDevicesView},
};

#[component]
pub fn AccountPage() -> impl IntoView {
    // Made here, outside `SignedIn`, for the reason `pages::inbox::inbox_resource` gives.
    let list = Resource::new(|| (), |_| passkeys());
    view! {
        <Layout nav=true>
            <SignedIn>
                <Account list/>
            </SignedIn>
        </Layout>
    }
}

#[component]
fn Account(list: Resource<Result<Vec<PasskeyView>, UiError>>) -> impl IntoView {
    let me = expect_context::<Me>();
    let (error, set_error) = signal(None::<String>);
    let (busy, set_busy) = signal(false);
    let (new_name, set_new_name) = signal("Another passkey".to_owned());
    let report = move |outcome: Result<(), String>| match outcome {
        Ok(()) => {
            set_error.set(None);
            list.refetch();
        }
        Err(e) => set_error.set(Some(e)),
    };
    // Adding is two steps: the new passkey is made, then one the account already has confirms it
    // (a session alone never adds signing power). The server keeps the new one in between.
    let (confirming, set_confirming) = signal(false);
    let add = move |_| {
        set_busy.set(true);
        let name = new_name.get_untracked();
        spawn_local(async move {
            let outcome = async {
                let options = start_add_passkey().await.map_err(|e| e.to_string())?;
                let credential = passkey::create(options).await?;
                finish_add_passkey(credential, name)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            set_busy.set(false);
            set_confirming.set(outcome.is_ok());
            set_error.set(outcome.err());
        });
    };
    let confirm = move |_| {
        set_busy.set(true);
        spawn_local(async move {
            let outcome = async {
                let options = start_confirm_add_passkey()
                    .await
                    .map_err(|e| e.to_string())?;
                let assertion = passkey::get(options).await?;
                confirm_add_passkey(assertion)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            set_busy.set(false);
            set_confirming.set(false);
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
                Err(e) => set_error.set(Some(e.to_string())),
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
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Suspense>
            // Both steps are in the page; the one not under way is hidden.
            <div class="row" hidden=confirming>
                <label class="sr-only" for="new-passkey-name">"Name for the new passkey"</label>
                <input id="new-passkey-name" type="text" prop:value=new_name
                    on:input=move |ev| set_new_name.set(event_target_value(&ev))/>
                <button type="button" on:click=add disabled=busy>"Add a passkey"</button>
            </div>
            <div class="hint" role="group" aria-labelledby="confirm-addition" hidden=move || !confirming.get()>
                <p id="confirm-addition">
                    <strong>"Confirm the new passkey"</strong>
                    " with a passkey you already have. Until then it is not added."
                </p>
                <div class="row">
                    <button type="button" on:click=confirm disabled=busy>"Confirm with an existing passkey"</button>
                    <button type="button" on:click=move |_| set_confirming.set(false) disabled=busy>"Cancel"</button>
                </div>
            </div>
            <ErrorLine message=error/>
        </section>
        <Notifications/>
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
                    .map_err(|e| e.to_string()),
            );
        });
    };
    let remove = move |_| {
        spawn_local(async move {
            report(
                remove_passkey(id.get_value())
                    .await
                    .map_err(|e| e.to_string()),
            );
        });
    };
    let input_id = format!("passkey-{}", key.id);
    view! {
        <li class="passkey">
            <label class="sr-only" for=input_id.clone()>"Passkey name"</label>
            <input id=input_id type="text" prop:value=name on:input=move |ev| set_name.set(event_target_value(&ev))/>
            <span class="muted small">
                {key.added} " · "
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

/// Push notifications: this browser's switch, a test message, and every device that receives them.
#[component]
fn Notifications() -> impl IntoView {
    let (error, set_error) = signal(None::<String>);
    let (status, set_status) = signal(None::<String>);
    let (busy, set_busy) = signal(false);
    // Browser-only: the subscription lives in this browser, so the server renders "Checking…" and the
    // hydrated page looks once it runs (an effect never runs on the server).
    let (settings, set_settings) = signal(None::<Result<(PushState, PushDevicesView), String>>);
    let load = move || {
        spawn_local(async move {
            let state = push::state().await;
            let endpoint = match &state {
                PushState::On { endpoint } => Some(endpoint.clone()),
                _ => None,
            };
            let loaded = push_devices(endpoint)
                .await
                .map(|devices| {
                    // A subscription the server does not list as this person's (someone else's on a
                    // shared browser, or one it forgot) is not "on" for them: turning on claims it.
                    let mine = devices.devices.iter().any(|d| d.this_device);
                    let state = match state {
                        PushState::On { .. } if !mine => PushState::Off,
                        other => other,
                    };
                    (state, devices)
                })
                .map_err(|e| e.to_string());
            set_settings.set(Some(loaded));
        });
    };
    Effect::new(move |_| load());
    let finish = move |outcome: Result<Option<String>, String>| {
        set_busy.set(false);
        match outcome {
            Ok(done) => {
                set_error.set(None);
                set_status.set(done);
                load();
            }
            Err(e) => {
                set_status.set(None);
                set_error.set(Some(e));
            }
        }
    };
    let turn_on = move |public_key: String| {
        set_busy.set(true);
        spawn_local(async move {
            let outcome = async {
                let subscription = push::turn_on(&public_key).await?;
                subscribe_push(subscription)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Some("Notifications are on for this device.".to_owned()))
            }
            .await;
            finish(outcome);
        });
    };
    let turn_off = move |_| {
        set_busy.set(true);
        spawn_local(async move {
            let outcome = async {
                if let Some(endpoint) = push::turn_off().await? {
                    unsubscribe_push(None, Some(endpoint))
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Ok(Some("Notifications are off for this device.".to_owned()))
            }
            .await;
            finish(outcome);
        });
    };
    let send_test = move |_| {
        set_busy.set(true);
        spawn_local(async move {
            let outcome = test_push()
                .await
                .map(|n| {
                    Some(if n == 1 {
                        "A test notification was sent to 1 device.".to_owned()
                    } else {
                        format!("A test notification was sent to {n} devices.")
                    })
                })
                .map_err(|e| e.to_string());
            finish(outcome);
        });
    };
    let remove = move |id: String| {
        spawn_local(async move {
            let outcome = unsubscribe_push(Some(id), None)
                .await
                .map(|()| Some("The device no longer receives notifications.".to_owned()))
                .map_err(|e| e.to_string());
            finish(outcome);
        });
    };
    view! {
        <section class="card" aria-labelledby="notifications-heading">
            <h2 id="notifications-heading">"Notifications"</h2>
            <p class="muted small intro">"New requests for your approval are also announced outside this page: on the devices below, and by e-mail when the server sends e-mail."</p>
            {move || {
                    match settings.get() {
                        None => view! { <p class="muted">"Checking this browser…"</p> }.into_any(),
                        Some(Err(e)) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                        Some(Ok((state, view))) => {
                            let public_key = view.public_key.clone();
                            let switch = match state {
                                PushState::Unsupported => view! {
                                    <p>"This browser cannot receive push notifications. On an iPhone or iPad, add Countersign to the Home Screen first (Share, then Add to Home Screen) and open it from there."</p>
                                }.into_any(),
                                PushState::Blocked => view! {
                                    <p>"Notifications are blocked for this site. Allow them in the browser's site settings, then reload this page."</p>
                                }.into_any(),
                                PushState::Off => view! {
                                    <p>"This device does not receive notifications."</p>
                                    <div class="row">
                                        <button type="button" disabled=busy
                                            on:click=move |_| turn_on(public_key.clone())>
                                            "Turn on notifications on this device"
                                        </button>
                                    </div>
                                }.into_any(),
                                PushState::On { .. } => view! {
                                    <p>"This device receives notifications."</p>
                                    <div class="row">
                                        <button type="button" disabled=busy on:click=send_test>"Send a test notification"</button>
                                        <button type="button" disabled=busy on:click=turn_off>"Turn off on this device"</button>
                                    </div>
                                }.into_any(),
                            };
                            view! {
                                {switch}
                                <DeviceList devices=view.devices remove/>
                            }.into_any()
                        }
                    }
                }}
            <Show when=move || status.get().is_some()>
                <p class="ok" role="status">{move || status.get()}</p>
            </Show>
            <ErrorLine message=error/>
        </section>
    }
}

#[component]
fn DeviceList(
    devices: Vec<PushDeviceView>,
    remove: impl Fn(String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    if devices.is_empty() {
        return view! { <p class="muted small">"No device receives notifications yet."</p> }
            .into_any();
    }
    view! {
        <h3 class="small-heading">"Devices that receive notifications"</h3>
        <ul class="devices">
            {devices
                .into_iter()
                .map(|device| {
                    let id = StoredValue::new(device.id.clone());
                    let label = device.label.clone();
                    view! {
                        <li class="device">
                            <span>
                                {device.label}
                                {device.this_device.then_some(" (this device)")}
                            </span>
                            {(device.failures > 0).then(|| view! {
                                <span class="warning small">
                                    {format!("Last {} deliveries failed", device.failures)}
                                </span>
                            })}
                            <button type="button" class="danger"
                                aria-label=format!("Stop notifications on {label}")
                                on:click=move |_| remove(id.get_value())>
                                "Remove"
                            </button>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
    .into_any()
}
