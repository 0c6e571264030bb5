//! Server functions: thin. Each finds the session and the service, calls it, and returns a view.
pub mod approvals;
pub mod identity;
pub mod notifications;

/// The service `S` (provided as context by the server) and the request's session.
#[cfg(feature = "ssr")]
pub(crate) async fn context<S: Clone + Send + Sync + 'static>(
) -> Result<(S, crate::service::Session), leptos::prelude::ServerFnError> {
    use leptos::prelude::{use_context, ServerFnError};
    let service = use_context::<S>()
        .ok_or_else(|| ServerFnError::new("a service is missing from the context"))?;
    let session = leptos_axum::extract::<crate::service::Session>()
        .await
        .map_err(|e| ServerFnError::new(format!("no session: {e}")))?;
    Ok((service, session))
}
