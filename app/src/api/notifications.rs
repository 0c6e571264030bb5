//! Push notification settings: this browser's subscription and the person's other devices.
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::model::PushDevicesView;

#[server(input = Json)]
pub async fn push_devices(this_endpoint: Option<String>) -> Result<PushDevicesView, ServerFnError> {
    let (service, session) = super::context::<crate::service::SharedNotifications>().await?;
    service
        .push_devices(&session, this_endpoint)
        .await
        .map_err(ServerFnError::ServerError)
}

#[server(input = Json)]
pub async fn subscribe_push(subscription: String) -> Result<(), ServerFnError> {
    let (service, session) = super::context::<crate::service::SharedNotifications>().await?;
    let headers: http::HeaderMap = leptos_axum::extract().await?;
    let user_agent = headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    service
        .subscribe_push(&session, subscription, user_agent)
        .await
        .map_err(ServerFnError::ServerError)
}

#[server(input = Json)]
pub async fn unsubscribe_push(
    id: Option<String>,
    endpoint: Option<String>,
) -> Result<(), ServerFnError> {
    let (service, session) = super::context::<crate::service::SharedNotifications>().await?;
    service
        .unsubscribe_push(&session, id, endpoint)
        .await
        .map_err(ServerFnError::ServerError)
}

#[server(input = Json)]
pub async fn test_push() -> Result<usize, ServerFnError> {
    let (service, session) = super::context::<crate::service::SharedNotifications>().await?;
    service
        .test_push(&session)
        .await
        .map_err(ServerFnError::ServerError)
}
