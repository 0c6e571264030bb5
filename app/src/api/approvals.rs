//! The inbox, a request, and deciding it.
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use webauthn_rs_proto::{PublicKeyCredential, RequestChallengeResponse};

use crate::{
    error::UiError,
    model::{Choice, InboxView, RequestView},
};

#[server(input = Json)]
pub async fn inbox() -> Result<InboxView, UiError> {
    super::Call::<crate::service::SharedApprovals>::new()
        .await
        .signed_in(|service, user| async move { service.inbox(&user).await })
        .await
}

#[server(input = Json)]
pub async fn request(id: String) -> Result<RequestView, UiError> {
    super::Call::<crate::service::SharedApprovals>::new()
        .await
        .signed_in(|service, user| async move { service.request(&user, &id).await })
        .await
}

#[server(input = Json)]
pub async fn start_decision(
    id: String,
    choice: Choice,
    user_code: Option<String>,
) -> Result<RequestChallengeResponse, UiError> {
    super::Call::<crate::service::SharedApprovals>::new()
        .await
        .signed_in(|service, user| async move {
            service.start_decision(&user, &id, choice, user_code).await
        })
        .await
}

#[server(input = Json)]
pub async fn finish_decision(
    id: String,
    choice: Choice,
    credential: PublicKeyCredential,
) -> Result<RequestView, UiError> {
    super::Call::<crate::service::SharedApprovals>::new()
        .await
        .signed_in(|service, user| async move {
            service
                .finish_decision(&user, &id, choice, credential)
                .await
        })
        .await
}
