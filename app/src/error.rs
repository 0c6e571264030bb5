//! The one error type of the server functions. Each refusal carries the sentence for the person at
//! the screen and answers with its real HTTP status, so a refusal is never an HTTP 500: only the
//! unexpected is, and its detail stays in the server's log.
use std::fmt;

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UiError {
    /// 401: nobody is signed in, or the sign-in failed.
    SignedOut(String),
    /// 403: signed in, but this is not allowed (a suspended passkey, a wrong user code).
    Forbidden(String),
    /// 404: no such thing for this person; anyone else's learns nothing.
    NotFound(String),
    /// 409: the thing moved on (decided, expired, a ceremony used up or for something else).
    Conflict(String),
    /// 422: the input cannot be accepted as given.
    Invalid(String),
    /// 429: too many attempts or too fast.
    TooMany(String),
    /// 500: something unexpected on the server.
    Internal,
    /// The call itself failed (network, encoding); made on the calling side.
    Call(String),
}

impl UiError {
    /// The HTTP status the server answers with.
    pub fn status(&self) -> u16 {
        match self {
            UiError::SignedOut(_) => 401,
            UiError::Forbidden(_) => 403,
            UiError::NotFound(_) => 404,
            UiError::Conflict(_) => 409,
            UiError::Invalid(_) => 422,
            UiError::TooMany(_) => 429,
            UiError::Internal | UiError::Call(_) => 500,
        }
    }

    /// The usual answer to a call that needs a signed-in person.
    pub fn session_ended() -> UiError {
        UiError::SignedOut("Your session has ended. Please sign in again.".into())
    }
}

impl fmt::Display for UiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UiError::SignedOut(m)
            | UiError::Forbidden(m)
            | UiError::NotFound(m)
            | UiError::Conflict(m)
            | UiError::Invalid(m)
            | UiError::TooMany(m) => f.write_str(m),
            UiError::Internal => f.write_str("Something went wrong on our side. Please try again."),
            UiError::Call(detail) => {
                write!(f, "Something went wrong ({detail}). Please try again.")
            }
        }
    }
}

impl std::error::Error for UiError {}

impl FromServerFnError for UiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        UiError::Call(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_have_their_own_statuses_and_only_the_unexpected_is_500() {
        let refusals = [
            UiError::session_ended(),
            UiError::Forbidden(String::new()),
            UiError::NotFound(String::new()),
            UiError::Conflict(String::new()),
            UiError::Invalid(String::new()),
            UiError::TooMany(String::new()),
        ];
        let statuses: Vec<u16> = refusals.iter().map(UiError::status).collect();
        assert_eq!(statuses, [401, 403, 404, 409, 422, 429]);
        assert_eq!(UiError::Internal.status(), 500);
    }

    #[test]
    fn the_person_reads_the_sentence_not_the_variant() {
        assert_eq!(
            UiError::Conflict("This request has already been decided.".into()).to_string(),
            "This request has already been decided."
        );
        assert!(!UiError::Internal.to_string().contains("Internal"));
    }
}
