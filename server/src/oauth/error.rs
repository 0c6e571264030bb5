//! The OAuth error response (RFC 6749 §5.2, CIBA §13): one type for every agent-facing endpoint, so
//! status codes, JSON bodies, `Cache-Control: no-store` and `WWW-Authenticate` are set in one place.
use std::borrow::Cow;

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::ciba::CibaError;
pub use crate::ciba::ErrorCode;

/// The status at the backchannel authentication endpoint (CIBA §13): 401 for invalid_client, 403
/// for access_denied, 400 for the rest (RFC 6749 §5.2).
fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
        ErrorCode::TemporarilyUnavailable => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

#[derive(Debug)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Option<Cow<'static, str>>,
    /// The poll interval after `slow_down`, echoed so a client knows what to keep.
    pub interval: Option<i64>,
    /// Set for token endpoint answers, whose statuses RFC 6749 §5.2 fixes (see [`OAuthError::status`]).
    at_token_endpoint: bool,
}

/// RFC 6749 §5.2 and CIBA §13, §11: the body of every refusal.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    #[schema(example = "invalid_request")]
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<i64>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> OAuthError {
        OAuthError {
            code,
            description: Some(description.into()),
            interval: None,
            at_token_endpoint: false,
        }
    }

    /// This error as the token endpoint answers it.
    pub fn at_token_endpoint(self) -> OAuthError {
        OAuthError {
            at_token_endpoint: true,
            ..self
        }
    }

    /// The token endpoint follows RFC 6749 §5.2 (400 for every error but invalid_client's 401), and
    /// CIBA §11 adds its codes there without new statuses, so a denial polled at /token is a 400;
    /// only /bc-authorize answers access_denied with 403 (CIBA §13).
    fn status(&self) -> StatusCode {
        match self.code {
            ErrorCode::AccessDenied if self.at_token_endpoint => StatusCode::BAD_REQUEST,
            code => status_of(code),
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidClient, description)
    }

    pub fn unauthorized_client(description: impl Into<Cow<'static, str>>) -> OAuthError {
        OAuthError::new(ErrorCode::UnauthorizedClient, description)
    }

    /// An internal failure: logged in full here, masked for the client.
    pub fn internal(err: impl std::fmt::Display) -> OAuthError {
        tracing::error!(error = %err, "internal error");
        OAuthError::new(ErrorCode::ServerError, "internal error")
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.as_str(),
            error_description: self.description.as_deref(),
            interval: self.interval,
        };
        let mut response = (self.status(), axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.code == ErrorCode::InvalidClient {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="countersign""#),
            );
        }
        response
    }
}

impl From<CibaError> for OAuthError {
    fn from(err: CibaError) -> OAuthError {
        match err {
            CibaError::SlowDown(interval) => OAuthError {
                interval: Some(interval),
                ..OAuthError::new(ErrorCode::SlowDown, err.to_string())
            },
            CibaError::Store(_) | CibaError::Keys(_) => OAuthError::internal(err),
            err => OAuthError::new(err.code(), err.to_string()),
        }
    }
}
