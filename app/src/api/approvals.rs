//! The inbox, a request, and deciding it.
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use webauthn_rs_proto::{PublicKeyCredential, RequestChallengeResponse};

use crate::model::{InboxView, RequestView};

#[server(input = Json)]
pub async fn inbox() -> Result<InboxView, ServerFnError> {
    let (service, session) = super::context::<crate::service::SharedApprovals>().await?;
    service
        .inbox(&session)
        .await
        .map_err(ServerFnError::ServerError)
}

#[server(input = Json)]
pub async fn request(id: String) -> Result<RequestView, ServerFnError> {
    let (service, session) = super::context::<crate::service::SharedApprovals>().await?;
    service
        .request(&session, &id)
        .await
        .map_err(ServerFnError::ServerError)
}

#[server(input = Json)]
pub async fn start_decision(
    id: String,
    approve: bool,
    user_code: Option<String>,
) -> Result<RequestChallengeResponse, ServerFnError> {
    let (service, session) = super::context::<crate::service::SharedApprovals>().await?;
    service
        .start_decision(&session, &id, approve, user_code)
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
    let (service, session) = super::context::<crate::service::SharedApprovals>().await?;
    service
        .finish_decision(&session, &id, approve, reason, credential)
        .await
        .map_err(ServerFnError::ServerError)
}
