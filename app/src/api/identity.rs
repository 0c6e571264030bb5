//! Sign-in, enrollment, sign-out and passkey management.
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use webauthn_rs_proto::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

use crate::{
    error::UiError,
    model::{InvitationView, Me, PasskeyView},
};

#[server(input = Json)]
pub async fn current_user() -> Result<Option<Me>, UiError> {
    super::Call::<crate::service::SharedIdentity>::new()
        .await
        .run(|service, session| async move {
            let user = service.signed_in(&session).await?;
            Ok(user.map(|user| user.me))
        })
        .await
}

// A fixed path: the limits per address count calls to it (see the server's `limits`).
#[server(input = Json, endpoint = "invitation")]
pub async fn invitation(token: String) -> Result<InvitationView, UiError> {
    super::Call::<crate::service::SharedEnrollment>::new()
        .await
        .run(|service, _| async move { service.invitation(&token).await })
        .await
}

// A fixed path: the limits per address count calls to it (see the server's `limits`).
#[server(input = Json, endpoint = "start_enrollment")]
pub async fn start_enrollment(
    token: String,
    name: Option<String>,
    email: Option<String>,
) -> Result<CreationChallengeResponse, UiError> {
    super::Call::<crate::service::SharedEnrollment>::new()
        .await
        .run(|service, session| async move {
            service
                .start_enrollment(&session, &token, name, email)
                .await
        })
        .await
}

// A fixed path: the limits per address count calls to it (see the server's `limits`).
#[server(input = Json, endpoint = "finish_enrollment")]
pub async fn finish_enrollment(
    credential: RegisterPublicKeyCredential,
    passkey_name: String,
) -> Result<Me, UiError> {
    super::Call::<crate::service::SharedEnrollment>::new()
        .await
        .run(|service, session| async move {
            service
                .finish_enrollment(&session, credential, passkey_name)
                .await
        })
        .await
}

// A fixed path: the limits per address count calls to it (see the server's `limits`).
#[server(input = Json, endpoint = "start_sign_in")]
pub async fn start_sign_in(autofill: bool) -> Result<RequestChallengeResponse, UiError> {
    super::Call::<crate::service::SharedIdentity>::new()
        .await
        .run(|service, session| async move { service.start_sign_in(&session, autofill).await })
        .await
}

// A fixed path: the limits per address count calls to it (see the server's `limits`).
#[server(input = Json, endpoint = "finish_sign_in")]
pub async fn finish_sign_in(credential: PublicKeyCredential) -> Result<Me, UiError> {
    super::Call::<crate::service::SharedIdentity>::new()
        .await
        .run(|service, session| async move { service.finish_sign_in(&session, credential).await })
        .await
}

#[server(input = Json)]
pub async fn sign_out(everywhere: bool) -> Result<(), UiError> {
    super::Call::<crate::service::SharedIdentity>::new()
        .await
        .run(|service, session| async move { service.sign_out(&session, everywhere).await })
        .await
}

#[server(input = Json)]
pub async fn passkeys() -> Result<Vec<PasskeyView>, UiError> {
    super::Call::<crate::service::SharedPasskeys>::new()
        .await
        .signed_in(|service, user| async move { service.passkeys(&user).await })
        .await
}

#[server(input = Json)]
pub async fn start_add_passkey() -> Result<CreationChallengeResponse, UiError> {
    super::Call::<crate::service::SharedPasskeys>::new()
        .await
        .signed_in(|service, user| async move { service.start_add_passkey(&user).await })
        .await
}

/// Registers the new passkey; it counts once one the account already has confirms it.
#[server(input = Json)]
pub async fn finish_add_passkey(
    credential: RegisterPublicKeyCredential,
    name: String,
) -> Result<(), UiError> {
    super::Call::<crate::service::SharedPasskeys>::new()
        .await
        .signed_in(|service, user| async move {
            service.finish_add_passkey(&user, credential, name).await
        })
        .await
}

#[server(input = Json)]
pub async fn start_confirm_add_passkey() -> Result<RequestChallengeResponse, UiError> {
    super::Call::<crate::service::SharedPasskeys>::new()
        .await
        .signed_in(|service, user| async move { service.start_confirm_add_passkey(&user).await })
        .await
}

#[server(input = Json)]
pub async fn confirm_add_passkey(assertion: PublicKeyCredential) -> Result<(), UiError> {
    super::Call::<crate::service::SharedPasskeys>::new()
        .await
        .signed_in(
            |service, user| async move { service.confirm_add_passkey(&user, assertion).await },
        )
        .await
}

#[server(input = Json)]
pub async fn rename_passkey(id: String, name: String) -> Result<(), UiError> {
    super::Call::<crate::service::SharedPasskeys>::new()
        .await
        .signed_in(|service, user| async move { service.rename_passkey(&user, id, name).await })
        .await
}

#[server(input = Json)]
pub async fn remove_passkey(id: String) -> Result<(), UiError> {
    super::Call::<crate::service::SharedPasskeys>::new()
        .await
        .signed_in(|service, user| async move { service.remove_passkey(&user, id).await })
        .await
}
