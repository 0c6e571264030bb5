//! Enrollment through a one-time invitation link: shows who is being enrolled, then creates a passkey.
use leptos::{prelude::*, task::spawn_local};
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::{
    api::identity::{finish_enrollment, invitation, start_enrollment},
    components::{
        layout::{ErrorLine, Layout},
        passkey,
    },
    model::InvitationView,
};

#[component]
pub fn EnrollPage() -> impl IntoView {
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let offer = Resource::new(token, invitation);
    view! {
        <Layout>
            <section class="card narrow">
                <h1>"Set up your passkey"</h1>
                <Suspense fallback=|| view! { <p class="muted">"Checking your invitation…"</p> }>
                    {move || {
                        offer
                            .get()
                            .map(|result| match result {
                                Ok(view) => view! { <EnrollForm token=token() offer=view/> }.into_any(),
                                Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                            })
                    }}
                </Suspense>
            </section>
        </Layout>
    }
}

#[component]
fn EnrollForm(token: String, offer: InvitationView) -> impl IntoView {
    let (error, set_error) = signal(None::<String>);
    let (busy, set_busy) = signal(false);
    let (name, set_name) = signal(offer.name.clone().unwrap_or_default());
    let (email, set_email) = signal(String::new());
    let (passkey_name, set_passkey_name) = signal("Passkey on this device".to_owned());
    let asks_identity = offer.email.is_none();
    let role = if offer.admin {
        "an admin"
    } else {
        "an approver"
    };
    let navigate = use_navigate();
    let token = StoredValue::new(token);
    let enroll = move |_| {
        set_busy.set(true);
        set_error.set(None);
        let navigate = navigate.clone();
        let (given_name, given_email) = if asks_identity {
            (Some(name.get_untracked()), Some(email.get_untracked()))
        } else {
            (None, None)
        };
        let label = passkey_name.get_untracked();
        spawn_local(async move {
            let outcome = async {
                let options = start_enrollment(token.get_value(), given_name, given_email)
                    .await
                    .map_err(|e| e.to_string())?;
                let credential = passkey::create(options).await?;
                finish_enrollment(credential, label)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            set_busy.set(false);
            match outcome {
                Ok(_) => navigate("/inbox", Default::default()),
                Err(e) => set_error.set(Some(e)),
            }
        });
    };
    view! {
        {match offer.email.clone() {
            Some(email) if offer.recovery => view! {
                <p class="who">
                    "Your account is being recovered: " <strong>{offer.name.clone().unwrap_or_default()}</strong>
                    " " <span class="muted">"(" {email} ")"</span>
                </p>
                <p class="hint">"Your earlier passkeys no longer work. The passkey you create here replaces them."</p>
            }.into_any(),
            Some(email) => view! {
                <p class="who">
                    "You are being enrolled as " {role} ": " <strong>{offer.name.clone().unwrap_or_default()}</strong>
                    " " <span class="muted">"(" {email} ")"</span>
                </p>
            }.into_any(),
            None => view! {
                <p class="who">"This link sets up the first admin of this Countersign. Tell us who you are."</p>
                <label for="enroll-name">"Your name"</label>
                <input id="enroll-name" type="text" autocomplete="name" prop:value=name
                    on:input=move |ev| set_name.set(event_target_value(&ev))/>
                <label for="enroll-email">"Your email"</label>
                <input id="enroll-email" type="email" autocomplete="email" prop:value=email
                    on:input=move |ev| set_email.set(event_target_value(&ev))/>
            }.into_any(),
        }}
        <label for="passkey-name">"Name this passkey"</label>
        <input id="passkey-name" type="text" prop:value=passkey_name
            on:input=move |ev| set_passkey_name.set(event_target_value(&ev))/>
        <p class="muted small">"Your device will ask you to confirm with your fingerprint, face, or PIN."</p>
        <button class="primary" type="button" on:click=enroll disabled=busy>
            {move || if busy.get() { "Waiting for your device…" } else { "Create passkey" }}
        </button>
        <ErrorLine message=error/>
    }
}
