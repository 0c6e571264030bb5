//! The approver's inbox: requests waiting for their decision.
use leptos::prelude::*;

use crate::{
    components::layout::{Layout, SignedIn},
    model::Me,
};

#[component]
pub fn InboxPage() -> impl IntoView {
    view! {
        <Layout nav=true>
            <SignedIn>
                <Greeting/>
                <section class="card">
                    <h2>"Waiting for you"</h2>
                    <p class="muted">"No requests are waiting for your decision."</p>
                </section>
            </SignedIn>
        </Layout>
    }
}

#[component]
fn Greeting() -> impl IntoView {
    let me = expect_context::<Me>();
    view! { <h1>"Inbox"</h1> <p class="muted">"Signed in as " {me.name} " (" {me.email} ")"</p> }
}
