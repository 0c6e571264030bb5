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
        .maybe_signed_in(|_, user| async move { Ok(user.map(|user| user.me)) })
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
    let cookie = ceremony::Cookie::new(ceremony::ENROLLMENT);
    super::Call::<crate::service::SharedEnrollment>::new()
        .await
        .run(|service, _| async move {
            let (options, state) = service.start_enrollment(&token, name, email).await?;
            cookie.keep(state);
            Ok(options)
        })
        .await
}

// A fixed path: the limits per address count calls to it (see the server's `limits`).
#[server(input = Json, endpoint = "finish_enrollment")]
pub async fn finish_enrollment(
    credential: RegisterPublicKeyCredential,
    passkey_name: String,
) -> Result<Me, UiError> {
    let cookie = ceremony::Cookie::new(ceremony::ENROLLMENT);
    super::Call::<crate::service::SharedEnrollment>::new()
        .await
        .run(|service, session| async move {
            service
                .finish_enrollment(&session, cookie.take(), credential, passkey_name)
                .await
        })
        .await
}

// A fixed path: the limits per address count calls to it (see the server's `limits`).
#[server(input = Json, endpoint = "start_sign_in")]
pub async fn start_sign_in(autofill: bool) -> Result<RequestChallengeResponse, UiError> {
    let cookie = ceremony::Cookie::new(ceremony::SIGN_IN);
    super::Call::<crate::service::SharedIdentity>::new()
        .await
        .run(|service, _| async move {
            let (options, state) = service.start_sign_in(autofill).await?;
            cookie.keep(state);
            Ok(options)
        })
        .await
}

// A fixed path: the limits per address count calls to it (see the server's `limits`).
#[server(input = Json, endpoint = "finish_sign_in")]
pub async fn finish_sign_in(credential: PublicKeyCredential) -> Result<Me, UiError> {
    let cookie = ceremony::Cookie::new(ceremony::SIGN_IN);
    super::Call::<crate::service::SharedIdentity>::new()
        .await
        .run(|service, session| async move {
            service
                .finish_sign_in(&session, cookie.take(), credential)
                .await
        })
        .await
}

/// The cookies that carry a sign-in's or an enrollment's sealed state from its start to its finish
/// (see `service::CeremonyState`): one per kind, so a sign-in in one tab leaves an enrollment in
/// another alone. HttpOnly and SameSite=Strict like the session's, and as short-lived as the state.
#[cfg(feature = "ssr")]
mod ceremony {
    use crate::service::{CeremonyState, SecureCookies};
    use tower_sessions::cookie::{self, time::Duration, SameSite};

    pub const SIGN_IN: &str = "countersign_sign_in";
    pub const ENROLLMENT: &str = "countersign_enrollment";
    /// A little over the server's five minutes: the server's own expiry is the one that counts.
    const MAX_AGE_SECONDS: i64 = 6 * 60;

    /// Read when the server function starts, while its context is reachable (see `Call`).
    pub struct Cookie {
        name: &'static str,
        presented: Option<String>,
        response: Option<leptos_axum::ResponseOptions>,
        secure: bool,
    }

    impl Cookie {
        pub fn new(name: &'static str) -> Cookie {
            use leptos::prelude::use_context;
            let presented = use_context::<http::request::Parts>().and_then(|parts| {
                parts
                    .headers
                    .get_all(http::header::COOKIE)
                    .iter()
                    .filter_map(|value| value.to_str().ok())
                    .flat_map(cookie::Cookie::split_parse)
                    .filter_map(Result::ok)
                    .find(|c| c.name() == name)
                    .map(|c| c.value().to_owned())
            });
            Cookie {
                name,
                presented,
                response: use_context::<leptos_axum::ResponseOptions>(),
                // Secure unless the server says its URL is plain http (a development machine).
                secure: use_context::<SecureCookies>().is_none_or(|s| s.0),
            }
        }

        /// Sets the cookie to `state`.
        pub fn keep(&self, state: CeremonyState) {
            self.set(state.0, Duration::seconds(MAX_AGE_SECONDS));
        }

        /// The state the browser presented, and the cookie removed: a state is presented once.
        pub fn take(&self) -> Option<CeremonyState> {
            if self.presented.is_some() {
                self.set(String::new(), Duration::ZERO);
            }
            self.presented.clone().map(CeremonyState)
        }

        fn set(&self, value: String, max_age: Duration) {
            let Some(response) = &self.response else {
                return;
            };
            let cookie = cookie::Cookie::build((self.name, value))
                .path("/")
                .http_only(true)
                .secure(self.secure)
                .same_site(SameSite::Strict)
                .max_age(max_age)
                .build();
            if let Ok(value) = http::HeaderValue::from_str(&cookie.to_string()) {
                response.append_header(http::header::SET_COOKIE, value);
            }
        }
    }
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
