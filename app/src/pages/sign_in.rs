//! Sign in with a passkey: discoverable credentials, so nobody types an email.
use leptos::{prelude::*, task::spawn_local};
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::{
    api::identity::{finish_sign_in, start_sign_in},
    components::{
        layout::{ErrorLine, Layout},
        passkey,
    },
    navigation,
};

#[component]
pub fn SignInPage() -> impl IntoView {
    let (error, set_error) = signal(None::<String>);
    let (busy, set_busy) = signal(false);
    let navigate = use_navigate();
    let query = use_query_map();
    let sign_in = move |_| {
        set_busy.set(true);
        set_error.set(None);
        let navigate = navigate.clone();
        spawn_local(async move {
            let outcome = async {
                let options = start_sign_in(false).await.map_err(|e| e.to_string())?;
                let credential = passkey::get(options).await?;
                finish_sign_in(credential).await.map_err(|e| e.to_string())
            }
            .await;
            set_busy.set(false);
            match outcome {
                Ok(_) => {
                    let next = query.with_untracked(|q| q.get(navigation::NEXT));
                    navigate(
                        navigation::after_sign_in(next.as_deref()),
                        Default::default(),
                    );
                }
                Err(e) => set_error.set(Some(e)),
            }
        });
    };
    view! {
        <Layout>
            <section class="card narrow">
                <h1>"Sign in"</h1>
                <p>"Use your passkey: on this device, a security key, or your phone. There is no password."</p>
                <button class="primary" type="button" on:click=sign_in disabled=busy>
                    {move || if busy.get() { "Waiting for your passkey…" } else { "Sign in with a passkey" }}
                </button>
                <ErrorLine message=error/>
                <p class="muted small">"New here? Ask an admin for an invitation link."</p>
            </section>
        </Layout>
    }
}
