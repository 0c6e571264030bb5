//! The parsers that read what agents and browsers send, each as one entry point taking raw bytes, for
//! the fuzz targets (`fuzz/`, run by `make fuzz`). Each must answer every input with a value or an
//! error of its own kind, never a panic; the property tests say the same of the same functions.
use crate::{
    ciba::{self, clients::jwt::JwtUse, RawDetails},
    oauth::{self, form::OAuthForm},
};

/// `application/x-www-form-urlencoded` bodies of the OAuth endpoints.
pub fn oauth_form(bytes: &[u8]) {
    let _ = OAuthForm::parse(bytes);
}

/// `authorization_details`, as a form sends it (text) and as a signed request does (JSON).
pub fn authorization_details(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes).into_owned();
    if let Ok(json) = serde_json::from_str(&text) {
        let _ = ciba::checks::check_authorization_details(Some(RawDetails::Json(json)));
    }
    let _ = ciba::checks::check_authorization_details(Some(RawDetails::Text(text)));
}

/// The `Authorization` header of client authentication (RFC 6749 §2.3.1).
pub fn authorization_header(bytes: &[u8]) {
    let Ok(value) = axum::http::HeaderValue::from_bytes(bytes) else {
        return;
    };
    let mut form = OAuthForm::default();
    form.headers
        .insert(axum::http::header::AUTHORIZATION, value);
    let _ = oauth::client_auth::basic_credentials(&form);
}

/// A JWT a client signs (assertion, signed request, login hint token), checked against a client with
/// one registered key: every use, at a fixed time.
pub fn client_jwt(bytes: &[u8]) {
    use std::sync::OnceLock;
    static CLIENT: OnceLock<ciba::Client> = OnceLock::new();
    let client = CLIENT.get_or_init(ciba::clients::fuzz_client);
    let token = String::from_utf8_lossy(bytes);
    for purpose in [
        JwtUse::ClientAssertion,
        JwtUse::SignedRequest,
        JwtUse::LoginHintToken,
    ] {
        assert!(client
            .verify_jwt(&token, purpose, 1_700_000_000_000)
            .is_err());
    }
}

/// Agent text as the approval page shows it (the statement renderer's segmentation).
pub fn statement_text(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let shown = app::text::segments(&text);
    let counted: usize = shown
        .iter()
        .map(|s| match s {
            app::text::Segment::Plain(p) => p.chars().count(),
            app::text::Segment::Spaces(n) => *n,
            _ => 1,
        })
        .sum();
    assert_eq!(counted, text.chars().count());
}
