//! Push notification settings: this browser's subscription and the person's other devices.
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::{error::UiError, model::PushDevicesView};

#[server(input = Json)]
pub async fn push_devices(this_endpoint: Option<String>) -> Result<PushDevicesView, UiError> {
    super::Call::<crate::service::SharedNotifications>::new()
        .await
        .signed_in(|service, user| async move { service.push_devices(&user, this_endpoint).await })
        .await
}

#[server(input = Json)]
pub async fn subscribe_push(subscription: String) -> Result<(), UiError> {
    let user_agent = use_context::<http::request::Parts>().and_then(|parts| {
        let agent = parts.headers.get(http::header::USER_AGENT)?;
        agent.to_str().ok().map(str::to_owned)
    });
    super::Call::<crate::service::SharedNotifications>::new()
        .await
        .signed_in(|service, user| async move {
            service
                .subscribe_push(&user, subscription, user_agent)
                .await
        })
        .await
}

#[server(input = Json)]
pub async fn unsubscribe_push(id: Option<String>, endpoint: Option<String>) -> Result<(), UiError> {
    super::Call::<crate::service::SharedNotifications>::new()
        .await
        .signed_in(
            |service, user| async move { service.unsubscribe_push(&user, id, endpoint).await },
        )
        .await
}

#[server(input = Json)]
pub async fn test_push() -> Result<usize, UiError> {
    super::Call::<crate::service::SharedNotifications>::new()
        .await
        .signed_in(|service, user| async move { service.test_push(&user).await })
        .await
}
