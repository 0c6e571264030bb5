//! The landing page: what Countersign is and where agents find it.
use leptos::prelude::*;

#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <main class="page">
            <header class="brand">
                <h1>"Countersign"</h1>
                <p class="tagline">"Human approval for AI-agent actions."</p>
            </header>
            <div class="cards">
            <section class="card">
                <h2>"For approvers"</h2>
                <p>
                    "When an agent asks to do something sensitive, you are told. You read one plain "
                    "statement of the action, its target and its consequence, and approve or deny it "
                    "with your passkey. Each approval covers that one action only."
                </p>
            </section>
            <section class="card">
                <h2>"For agents"</h2>
                <p>
                    "Countersign is an OpenID Connect CIBA provider. Its metadata is at "
                    <a href="/.well-known/openid-configuration">
                        <code>"/.well-known/openid-configuration"</code>
                    </a>"."
                </p>
            </section>
            </div>
        </main>
    }
}
