//! The gate's DPoP key (RFC 9449), made fresh at each start: with `--dpop` every token request carries
//! a proof of it, so the access token is bound to the gate (`cnf.jkt`), and every HTTP request that
//! carries the token to the upstream carries a new proof naming that request and the token (`ath`).
//! A token taken from the wire is then of no use without the key.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::http::{HeaderName, HeaderValue};
use futures::{stream::BoxStream, Future};
use josekit::{
    jwk::Jwk,
    jws::{JwsHeader, ES256},
    jwt::{self, JwtPayload},
};
use rmcp::{
    model::ClientJsonRpcMessage,
    transport::streamable_http_client::{
        SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
        StreamableHttpResponseLimits,
    },
};
use serde_json::{json, Map, Value};

use crate::{
    clock::{secs, Clock, SystemClock},
    oauth::dpop::thumbprint,
    secrets::{base64url, random_token, sha256},
};

pub struct DpopKey {
    private: Jwk,
    public: Map<String, Value>,
    /// The key's RFC 7638 thumbprint: what a token bound to it names in `cnf.jkt`.
    pub jkt: String,
    /// The latest nonce the token endpoint asked for (§8).
    nonce: Mutex<Option<String>>,
}

impl DpopKey {
    pub fn generate() -> anyhow::Result<DpopKey> {
        let pair = ES256.generate_key_pair()?;
        let public = pair.to_jwk_public_key().as_ref().clone();
        Ok(DpopKey {
            private: pair.to_jwk_private_key(),
            jkt: thumbprint(&public).ok_or_else(|| anyhow::anyhow!("no thumbprint"))?,
            public,
            nonce: Mutex::new(None),
        })
    }

    /// A proof for `method` on `url` (RFC 9449 §4.2); with `access_token`, its hash (`ath`); at the
    /// token endpoint, the last nonce it gave.
    pub fn proof(&self, method: &str, url: &str, access_token: Option<&str>) -> String {
        let mut claims = Map::new();
        claims.insert("jti".into(), json!(random_token(16)));
        claims.insert("htm".into(), json!(method));
        // §4.2: the URL without its query and fragment.
        let htu = url.split(['?', '#']).next().unwrap_or(url);
        claims.insert("htu".into(), json!(htu));
        claims.insert("iat".into(), json!(secs(SystemClock.now())));
        if let Some(token) = access_token {
            claims.insert("ath".into(), json!(base64url(&sha256(token.as_bytes()))));
        } else if let Some(nonce) = self.nonce.lock().expect("nonce").clone() {
            claims.insert("nonce".into(), json!(nonce));
        }
        let mut header = JwsHeader::new();
        header.set_token_type("dpop+jwt");
        // Setting a JSON object as a header claim cannot fail.
        let _ = header.set_claim("jwk", Some(Value::Object(self.public.clone())));
        let signer = ES256
            .signer_from_jwk(&self.private)
            .expect("the gate's own ES256 key signs");
        let payload = JwtPayload::from_map(claims).expect("claims are an object");
        jwt::encode_with_signer(&payload, &header, &signer).expect("a proof encodes")
    }

    /// Keeps the nonce a response gave, for the next proof to the token endpoint.
    pub fn remember_nonce(&self, nonce: &str) {
        *self.nonce.lock().expect("nonce") = Some(nonce.to_owned());
    }
}

/// rmcp's HTTP client for one approved call, sending the token with the DPoP scheme and a new proof
/// on every request (initialize, the call, the session's end).
#[derive(Clone)]
pub struct DpopHttp {
    inner: reqwest013::Client,
    key: Arc<DpopKey>,
    token: Arc<str>,
}

impl DpopHttp {
    pub fn new(key: Arc<DpopKey>, token: &str) -> DpopHttp {
        DpopHttp {
            inner: reqwest013::Client::new(),
            key,
            token: token.into(),
        }
    }

    fn sign(
        &self,
        method: &str,
        uri: &str,
        mut headers: HashMap<HeaderName, HeaderValue>,
    ) -> HashMap<HeaderName, HeaderValue> {
        let proof = self.key.proof(method, uri, Some(&self.token));
        let pairs = [
            (
                axum::http::header::AUTHORIZATION,
                format!("DPoP {}", self.token),
            ),
            (HeaderName::from_static("dpop"), proof),
        ];
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        headers
    }
}

type Failure = StreamableHttpError<reqwest013::Error>;
type Events = BoxStream<'static, Result<sse_stream::Sse, SseError>>;

impl StreamableHttpClient for DpopHttp {
    type Error = reqwest013::Error;

    fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> impl Future<Output = Result<StreamableHttpPostResponse, Failure>> + Send + '_ {
        let headers = self.sign("POST", &uri, custom_headers);
        self.inner
            .post_message(uri, message, session_id, None, headers)
    }

    fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> impl Future<Output = Result<StreamableHttpPostResponse, Failure>> + Send + '_ {
        let headers = self.sign("POST", &uri, custom_headers);
        self.inner
            .post_message_with_response_limits(uri, message, session_id, None, headers, limits)
    }

    fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> impl Future<Output = Result<(), Failure>> + Send + '_ {
        let headers = self.sign("DELETE", &uri, custom_headers);
        self.inner.delete_session(uri, session_id, None, headers)
    }

    fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> impl Future<Output = Result<Events, Failure>> + Send + '_ {
        let headers = self.sign("GET", &uri, custom_headers);
        self.inner
            .get_stream(uri, session_id, last_event_id, None, headers)
    }

    fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> impl Future<Output = Result<Events, Failure>> + Send + '_ {
        let headers = self.sign("GET", &uri, custom_headers);
        self.inner.get_stream_with_max_sse_event_size(
            uri,
            session_id,
            last_event_id,
            None,
            headers,
            max_sse_event_size,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(jwt: &str) -> (Value, Value) {
        let decode = |part: &str| {
            let bytes =
                base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, part)
                    .unwrap();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        };
        let mut it = jwt.split('.');
        (decode(it.next().unwrap()), decode(it.next().unwrap()))
    }

    #[test]
    fn a_proof_names_its_request_its_key_and_its_token() {
        // RFC 9449 §4.2: typ dpop+jwt, the public key in the header, jti/htm/htu/iat; §7.1: ath.
        let key = DpopKey::generate().unwrap();
        let (header, claims) = parts(&key.proof("POST", "https://tools.example/mcp", Some("tok")));
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(
            thumbprint(header["jwk"].as_object().unwrap()).unwrap(),
            key.jkt
        );
        assert!(header["jwk"].get("d").is_none(), "never the private half");
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], "https://tools.example/mcp");
        assert_eq!(claims["ath"], base64url(&sha256(b"tok")));
        assert!(claims.get("nonce").is_none());
        let (_, queried) = parts(&key.proof("GET", "https://tools.example/mcp?a=1#x", Some("tok")));
        assert_eq!(
            queried["htu"], "https://tools.example/mcp",
            "no query or fragment"
        );

        // At the token endpoint, the nonce it asked for; each proof is new.
        key.remember_nonce("n-1");
        let first = key.proof("POST", "https://as.example/token", None);
        let (_, claims) = parts(&first);
        assert_eq!(claims["nonce"], "n-1");
        assert!(claims.get("ath").is_none());
        let (_, again) = parts(&key.proof("POST", "https://as.example/token", None));
        assert_ne!(claims["jti"], again["jti"]);
    }
}
