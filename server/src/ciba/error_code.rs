//! The error codes of the protocol (RFC 6749 §5.2, CIBA §11, §13, §10.3.1, RFC 9449), defined once:
//! the endpoints answer with them (`oauth::error` adds the HTTP status), a push delivery carries
//! them, and the reference agent and the gate read them back.
use super::CibaError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    InvalidScope,
    UnauthorizedClient,
    UnsupportedGrantType,
    AccessDenied,
    ExpiredLoginHintToken,
    UnknownUserId,
    MissingUserCode,
    InvalidUserCode,
    InvalidBindingMessage,
    InvalidAuthorizationDetails,
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
    /// RFC 9449 §5: the DPoP proof is missing or invalid.
    InvalidDpopProof,
    /// RFC 9449 §8: prove again with the nonce in the `DPoP-Nonce` header.
    UseDpopNonce,
    /// Too many refused requests from one address (see `limits`): 429, with `Retry-After`.
    TemporarilyUnavailable,
    /// CIBA §10.3.1: a push of a request that failed for another reason than denial or expiry.
    TransactionFailed,
    ServerError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ExpiredLoginHintToken => "expired_login_hint_token",
            ErrorCode::UnknownUserId => "unknown_user_id",
            ErrorCode::MissingUserCode => "missing_user_code",
            ErrorCode::InvalidUserCode => "invalid_user_code",
            ErrorCode::InvalidBindingMessage => "invalid_binding_message",
            ErrorCode::InvalidAuthorizationDetails => "invalid_authorization_details",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::TransactionFailed => "transaction_failed",
            ErrorCode::ServerError => "server_error",
        }
    }
}

impl ErrorCode {
    const ALL: [ErrorCode; 21] = [
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidClient,
        ErrorCode::InvalidGrant,
        ErrorCode::InvalidScope,
        ErrorCode::UnauthorizedClient,
        ErrorCode::UnsupportedGrantType,
        ErrorCode::AccessDenied,
        ErrorCode::ExpiredLoginHintToken,
        ErrorCode::UnknownUserId,
        ErrorCode::MissingUserCode,
        ErrorCode::InvalidUserCode,
        ErrorCode::InvalidBindingMessage,
        ErrorCode::InvalidAuthorizationDetails,
        ErrorCode::AuthorizationPending,
        ErrorCode::SlowDown,
        ErrorCode::ExpiredToken,
        ErrorCode::InvalidDpopProof,
        ErrorCode::UseDpopNonce,
        ErrorCode::TemporarilyUnavailable,
        ErrorCode::TransactionFailed,
        ErrorCode::ServerError,
    ];

    /// The code a server sent, if it is one of the protocol's.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl CibaError {
    /// The protocol's name for this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            CibaError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            CibaError::InvalidScope(_) => ErrorCode::InvalidScope,
            CibaError::UnknownUserId(_) => ErrorCode::UnknownUserId,
            CibaError::ExpiredLoginHintToken => ErrorCode::ExpiredLoginHintToken,
            CibaError::UnauthorizedClient(_) => ErrorCode::UnauthorizedClient,
            CibaError::MissingUserCode => ErrorCode::MissingUserCode,
            CibaError::InvalidUserCode(_) => ErrorCode::InvalidUserCode,
            CibaError::InvalidBindingMessage(_) => ErrorCode::InvalidBindingMessage,
            CibaError::InvalidAuthorizationDetails(_) => ErrorCode::InvalidAuthorizationDetails,
            CibaError::AccessDenied(_) => ErrorCode::AccessDenied,
            CibaError::InvalidGrant(_) => ErrorCode::InvalidGrant,
            CibaError::InvalidDpopProof(_) => ErrorCode::InvalidDpopProof,
            CibaError::ExpiredToken => ErrorCode::ExpiredToken,
            CibaError::AuthorizationPending => ErrorCode::AuthorizationPending,
            CibaError::SlowDown(_) => ErrorCode::SlowDown,
            CibaError::Store(_) | CibaError::Keys(_) => ErrorCode::ServerError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_as_itself() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(
            ErrorCode::parse("authorization_pending"),
            Some(ErrorCode::AuthorizationPending)
        );
        assert_eq!(ErrorCode::parse("Authorization_Pending"), None);
    }
}
