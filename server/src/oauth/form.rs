//! Strict parsing of `application/x-www-form-urlencoded` request bodies for the OAuth endpoints. Every
//! failure is an `invalid_request` JSON error, never a 500, a 413 or a plain-text rejection.
use std::collections::HashMap;

use axum::{
    body::{to_bytes, Body},
    extract::FromRequest,
    http::{header, Request},
};

use super::error::OAuthError;

/// The largest body accepted; `authorization_details` and signed requests fit well within it.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
const MAX_VALUE_BYTES: usize = 16 * 1024;

/// The parameters of one form body. RFC 6749 §3.1: no parameter may appear twice, and a parameter sent
/// without a value counts as omitted.
#[derive(Debug, Default)]
pub struct OAuthForm {
    params: HashMap<String, String>,
    pub headers: axum::http::HeaderMap,
}

impl OAuthForm {
    pub fn parse(bytes: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
        let mut params = HashMap::new();
        for pair in bytes.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let mut halves = pair.splitn(2, |b| *b == b'=');
            let name = decode(halves.next().unwrap_or_default())?;
            let value = decode(halves.next().unwrap_or_default())?;
            if value.len() > MAX_VALUE_BYTES {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {name} is too long"
                )));
            }
            if params.insert(name.clone(), value).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {name} is repeated (RFC 6749 §3.1)"
                )));
            }
        }
        params.retain(|_, v: &mut String| !v.is_empty());
        Ok(params)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    pub fn take(&mut self, name: &str) -> Option<String> {
        self.params.remove(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.params.keys().map(String::as_str)
    }
}

/// One form-urlencoded component: `+` is a space, then percent-decoding, which must yield UTF-8.
pub fn decode(raw: &[u8]) -> Result<String, OAuthError> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    percent_encoding::percent_decode(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            OAuthError::invalid_request(
                "the request body is not valid UTF-8 after percent-decoding",
            )
        })
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthError;

    async fn from_request(req: Request<Body>, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "the request body must be application/x-www-form-urlencoded",
            ));
        }
        let bytes = to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
            OAuthError::invalid_request(format!(
                "the request body is larger than {MAX_BODY_BYTES} bytes"
            ))
        })?;
        Ok(OAuthForm {
            params: OAuthForm::parse(&bytes)?,
            headers: parts.headers,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::oauth::error::ErrorCode;

    proptest! {
        /// Any bytes at all: parameters or `invalid_request`, never a panic; what is accepted has no
        /// empty value and none too long.
        #[test]
        fn any_body_is_parameters_or_invalid_request(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            match OAuthForm::parse(&bytes) {
                Ok(params) => prop_assert!(params.values().all(|v| !v.is_empty() && v.len() <= MAX_VALUE_BYTES)),
                Err(e) => prop_assert_eq!(e.code, ErrorCode::InvalidRequest),
            }
        }

        /// Near-valid bodies: whatever a form encoder writes parses back to what it was given, and a
        /// parameter given twice is refused (RFC 6749 §3.1).
        #[test]
        fn encoded_parameters_parse_back(
            params in proptest::collection::btree_map("[a-z_]{1,16}", "\\PC{1,40}", 0..8),
            repeat in any::<prop::sample::Index>(),
        ) {
            let body = serde_urlencoded::to_string(&params).unwrap();
            let parsed = OAuthForm::parse(body.as_bytes()).unwrap();
            prop_assert_eq!(&parsed, &params.clone().into_iter().collect::<HashMap<_, _>>());
            if !params.is_empty() {
                let name = params.keys().nth(repeat.index(params.len())).unwrap();
                let twice = format!("{body}&{name}=again");
                prop_assert_eq!(OAuthForm::parse(twice.as_bytes()).unwrap_err().code, ErrorCode::InvalidRequest);
            }
        }
    }
}
