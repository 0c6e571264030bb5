//! Sign-in, enrollment, sign-out and passkey management.
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use webauthn_rs_proto::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

use crate::model::{InvitationView, Me, PasskeyView};

/// The message a failed call carries, without the framework's prefix.
pub fn message(error: &ServerFnError) -> String {
    match error {
        ServerFnError::ServerError(message) => message.clone(),
        other => format!("Something went wrong ({other}). Please try again."),
    }
}

#[server(input = Json)]
pub async fn current_user() -> Result<Option<Me>, ServerFnError> {
    let (service, session) = super::context::<crate::service::SharedIdentity>().await?;
    service
        .current_user(&session)
        .await
        .map_err(ServerFnError::ServerError)
}

#[server(input = Json)]
pub async fn invitation(token: String) -> Result<InvitationView, ServerFnError> {
    let (service, _) = super::context::<crate::service::SharedIdentity>().await?;
    service
        .invitation(&token)
        .await
        .map_err(ServerFnError::ServerError)
}

#[server(input = Json)]
pub async fn start_enrollment(
    token: String,
    name: Option<String>,
    email: Option<String>,
) -> Result<CreationChallengeResponse, ServerFnError> {
    let (service, session) = super::context::<crate::service::SharedIdentity>().await?;
    service
        .start_enrollment(&session, &token, name, email)
        .await
        .map_err(ServerFnError::ServerError)
}

#[server(input = Json)]
pub async fn finish_enrollment(
    credential: RegisterPublicKeyCredential,
    passkey_name: String,
) -> Result<Me, ServerFnError> {
    let (service, session) = super::context::<crate::service::SharedIdentity>().await?;
    service
        .finish_enrollment(&session, credential, passkey_name)
        .await
        .map_err(ServerFnError::ServerError)
}

#[server(input = Json)]
pub async fn start_sign_in(autofill: bool) -> Result<RequestChallengeResponse, ServerFnError> {
    let (service, session) = super::context::<crate::service::SharedIdentity>().await?;
    service
        .start_sign_in(&session, autofill)
        .await
        .map_err(ServerFnError::ServerError)
}

#[server(input = Json)]
pub async fn finish_sign_in(credential: PublicKeyCredential) -> Result<Me, ServerFnError> {
    let (service, session) = super::context::<crate::service::SharedIdentity>().await?;
    service
        .finish_sign_in(&session, credential)
        .await
        .map_err(ServerFnError::ServerError)
}

#[server(input = Json)]
pub async fn sign_out(everywhere: bool) -> Result<(), ServerFnError> {
    let (service, session) = super::context::<crate::service::SharedIdentity>().await?;
    service
        .sign_out(&session, everywhere)
        .await
        .map_err(ServerFnError::ServerError)
}

#[server(input = Json)]
pub async fn passkeys() -> Result<Vec<PasskeyView>, ServerFnError> {
    let (service, session) = super::context::<crate::service::SharedIdentity>().await?;
    service
        .passkeys(&session)
        .await
        .map_err(ServerFnError::ServerError)
}

#[server(input = Json)]
pub async fn start_add_passkey() -> Result<CreationChallengeResponse, ServerFnError> {
    let (service, session) = super::context::<crate::service::SharedIdentity>().await?;
    service
        .start_add_passkey(&session)
        .await
        .map_err(ServerFnError::ServerError)
}

#[server(input = Json)]
pub async fn finish_add_passkey(
    credential: RegisterPublicKeyCredential,
    name: String,
) -> Result<(), ServerFnError> {
    let (service, session) = super::context::<crate::service::SharedIdentity>().await?;
    service
        .finish_add_passkey(&session, credential, name)
        .await
        .map_err(ServerFnError::ServerError)
}

#[server(input = Json)]
pub async fn rename_passkey(id: String, name: String) -> Result<(), ServerFnError> {
    let (service, session) = super::context::<crate::service::SharedIdentity>().await?;
    service
        .rename_passkey(&session, id, name)
        .await
        .map_err(ServerFnError::ServerError)
}

#[server(input = Json)]
pub async fn remove_passkey(id: String) -> Result<(), ServerFnError> {
    let (service, session) = super::context::<crate::service::SharedIdentity>().await?;
    service
        .remove_passkey(&session, id)
        .await
        .map_err(ServerFnError::ServerError)
}
