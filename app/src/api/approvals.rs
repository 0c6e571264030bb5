//! The inbox, a request, and deciding it.
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use webauthn_rs_proto::{PublicKeyCredential, RequestChallengeResponse};

use crate::model::{InboxView, RequestView};

#[cfg(feature = "ssr")]
async fn context(
) -> Result<(crate::service::SharedApprovals, crate::service::Session), ServerFnError> {
    let service = use_context::<crate::service::SharedApprovals>()
        .ok_or_else(|| ServerFnError::new("the approval service is missing"))?;
    let session = leptos_axum::extract::<crate::service::Session>()
        .await
        .map_err(|e| ServerFnError::new(format!("no session: {e}")))?;
    Ok((service, session))
}

#[server(input = Json)]
pub async fn inbox() -> Result<InboxView, ServerFnError> {
    let (service, session) = context().await?;
    service
        .inbox(&session)
        .await
        .map_err(ServerFnError::ServerError)
}

#[server(input = Json)]
pub async fn request(id: String) -> Result<RequestView, ServerFnError> {
    let (service, session) = context().await?;
    service
        .request(&session, &id)
        .await
        .map_err(ServerFnError::ServerError)
}

#[server(input = Json)]
pub async fn start_decision(
    id: String,
    approve: bool,
) -> Result<RequestChallengeResponse, ServerFnError> {
    let (service, session) = context().await?;
    service
        .start_decision(&session, &id, approve)
        .await
        .map_err(ServerFnError::ServerError)
}

#[server(input = Json)]
pub async fn finish_decision(
    id: String,
    approve: bool,
    reason: Option<String>,
    credential: PublicKeyCredential,
) -> Result<RequestView, ServerFnError> {
    let (service, session) = context().await?;
    service
        .finish_decision(&session, &id, approve, reason, credential)
        .await
        .map_err(ServerFnError::ServerError)
}
