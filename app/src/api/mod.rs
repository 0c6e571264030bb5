//! Server functions: thin. Each reads what it needs from the context, resolves the signed-in person
//! (when it needs one), calls the service, and returns a view or a typed refusal whose HTTP status the
//! response carries.
pub mod admin;
pub mod approvals;
pub mod identity;
pub mod notifications;

#[cfg(feature = "ssr")]
use crate::{
    error::UiError,
    service::{Session, SharedIdentity, SignInMemo, SignedIn},
};

/// Where the server functions answer (Leptos' default prefix).
#[cfg(feature = "ssr")]
const API_PREFIX: &str = "/api/";

/// One server function call. Everything it needs from the Leptos context is read when it is made,
/// before the first `.await`: a page rendered on the server runs the same functions in-process, and
/// there the context is not reliably reachable once the future has yielded.
#[cfg(feature = "ssr")]
pub(crate) struct Call<S> {
    service: Option<S>,
    identity: Option<SharedIdentity>,
    /// The response of a server function request, whose status a refusal sets. None while a page is
    /// rendered: the page keeps its own status (a sign-in redirect must stay a 302).
    response: Option<leptos_axum::ResponseOptions>,
    session: Result<Session, UiError>,
    memo: Option<SignInMemo>,
}

#[cfg(feature = "ssr")]
impl<S: Clone + Send + Sync + 'static> Call<S> {
    pub(crate) async fn new() -> Call<S> {
        use leptos::prelude::use_context;
        let called = use_context::<http::request::Parts>()
            .is_some_and(|parts| parts.uri.path().starts_with(API_PREFIX));
        let response = use_context::<leptos_axum::ResponseOptions>().filter(|_| called);
        let service = use_context::<S>();
        let identity = use_context::<SharedIdentity>();
        let memo = use_context::<SignInMemo>();
        let session = leptos_axum::extract::<Session>()
            .await
            .map_err(|e| UiError::Call(format!("no session: {e}")));
        Call {
            service,
            identity,
            response,
            session,
            memo,
        }
    }

    /// Who is signed in on this request's session, once per request (see `SignInMemo`).
    async fn who(
        memo: Option<SignInMemo>,
        identity: &SharedIdentity,
        session: &Session,
    ) -> Result<Option<SignedIn>, UiError> {
        match memo {
            Some(memo) => memo.resolve(identity.signed_in(session)).await,
            None => identity.signed_in(session).await,
        }
    }

    /// Runs `f` with whoever is signed in, if anyone validly is.
    pub(crate) async fn maybe_signed_in<T, F>(
        self,
        f: impl FnOnce(S, Option<SignedIn>) -> F,
    ) -> Result<T, UiError>
    where
        F: std::future::Future<Output = Result<T, UiError>>,
    {
        let result = async {
            let (service, identity) = self.service.zip(self.identity).ok_or(UiError::Internal)?;
            let user = Self::who(self.memo, &identity, &self.session?).await?;
            f(service, user).await
        }
        .await;
        answer(self.response, result)
    }

    /// Runs `f` with the service and the session; a refusal gets its HTTP status.
    pub(crate) async fn run<T, F>(self, f: impl FnOnce(S, Session) -> F) -> Result<T, UiError>
    where
        F: std::future::Future<Output = Result<T, UiError>>,
    {
        let result = async {
            let service = self.service.ok_or(UiError::Internal)?;
            f(service, self.session?).await
        }
        .await;
        answer(self.response, result)
    }

    /// Runs `f` for the signed-in person, resolved once for the whole call; 401 if nobody validly is.
    pub(crate) async fn signed_in<T, F>(
        self,
        f: impl FnOnce(S, SignedIn) -> F,
    ) -> Result<T, UiError>
    where
        F: std::future::Future<Output = Result<T, UiError>>,
    {
        let result = async {
            let (service, identity) = self.service.zip(self.identity).ok_or(UiError::Internal)?;
            let user = Self::who(self.memo, &identity, &self.session?)
                .await?
                .ok_or_else(UiError::session_ended)?;
            f(service, user).await
        }
        .await;
        answer(self.response, result)
    }
}

#[cfg(feature = "ssr")]
fn answer<T>(
    response: Option<leptos_axum::ResponseOptions>,
    result: Result<T, UiError>,
) -> Result<T, UiError> {
    if let (Err(e), Some(response)) = (&result, response) {
        let status = http::StatusCode::from_u16(e.status())
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        response.set_status(status);
    }
    result
}
