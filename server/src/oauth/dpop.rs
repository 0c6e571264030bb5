//! DPoP proofs at the token endpoint (RFC 9449 §4.3) and the server nonces they carry (§8).
//!
//! A proof is a JWT the client signs with the key its tokens are to be bound to, naming this one
//! request (`htm`, `htu`), fresh (`iat`, a server `nonce`) and never sent before (`jti`). What it
//! yields is the key's RFC 7638 thumbprint; the domain binds tokens to it.
use axum::http::{HeaderMap, HeaderValue, Method};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use josekit::{jwk::Jwk, jwt};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use url::Url;

use super::{
    error::{ErrorCode, OAuthError},
    replay::ReplayCache,
};
use crate::{
    ciba::{
        clients::{verifier_for, CLIENT_JWT_ALGS},
        record::canonical,
    },
    clock::{secs, Millis},
    sealing::Kek,
    secrets::{base64url, sha256},
};

pub const DPOP_HEADER: &str = "dpop";
pub const NONCE_HEADER: &str = "dpop-nonce";

/// A nonce is made for a two-minute window and accepted in that window and the next, so a client
/// that just received one has at least two minutes to use it.
const NONCE_WINDOW_MS: i64 = 120_000;
/// How old (seconds) a proof's `iat` may be, and how far ahead of this server's clock.
const MAX_AGE_SECS: i64 = 300;
const MAX_AHEAD_SECS: i64 = 60;
/// A `jti` longer than this is refused rather than remembered.
const MAX_JTI_LEN: usize = 256;

/// Members of a private or symmetric JWK: none may appear in a proof's `jwk` (§4.3 item 7).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a proof was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ProofError {
    /// `invalid_dpop_proof`, and why.
    Invalid(String),
    /// `use_dpop_nonce`: the proof lacks a current server nonce (§8).
    Nonce(&'static str),
}

impl From<ProofError> for OAuthError {
    fn from(err: ProofError) -> OAuthError {
        match err {
            ProofError::Invalid(why) => OAuthError::new(
                ErrorCode::InvalidDpopProof,
                format!("DPoP proof rejected: {why}"),
            ),
            ProofError::Nonce(why) => OAuthError::new(
                ErrorCode::UseDpopNonce,
                format!("{why}: sign a new proof with the nonce in the DPoP-Nonce header"),
            ),
        }
    }
}

/// Checks proofs for one endpoint (the token endpoint) and makes its nonces.
pub struct DpopVerifier {
    endpoint: Url,
    nonce_key: [u8; 32],
    /// Seen `jti`s per key. In memory: a proof replayed at another instance within its nonce's life
    /// is not caught there, but it only gets tokens bound to a key the replayer does not hold.
    replay: ReplayCache,
}

impl DpopVerifier {
    /// The nonce key is derived from the KEK, so every instance of a deployment accepts the nonces of
    /// the others.
    pub fn new(endpoint: &str, kek: &Kek) -> anyhow::Result<DpopVerifier> {
        Ok(DpopVerifier {
            endpoint: Url::parse(endpoint)?,
            nonce_key: kek.derive("countersign/dpop-nonce/v1"),
            replay: ReplayCache::default(),
        })
    }

    /// The nonce to hand out now (sent on every token endpoint response).
    pub fn nonce(&self, now: Millis) -> HeaderValue {
        let window = now.div_euclid(NONCE_WINDOW_MS);
        let mut bytes = window.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.nonce_tag(window)[..16]);
        HeaderValue::from_str(&base64url(&bytes)).expect("base64url is a valid header value")
    }

    fn nonce_tag(&self, window: i64) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(&window.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.nonce_key).expect("HMAC takes any key length")
    }

    fn nonce_is_current(&self, nonce: &str, now: Millis) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let Some((window, tag)) = bytes.split_first_chunk::<8>() else {
            return false;
        };
        let window = i64::from_be_bytes(*window);
        let current = now.div_euclid(NONCE_WINDOW_MS);
        if tag.len() != 16 || !(window == current || window == current - 1) {
            return false;
        }
        let mut mac = self.mac();
        mac.update(&window.to_be_bytes());
        // Constant time: the tag is compared by the MAC library.
        mac.verify_truncated_left(tag).is_ok()
    }

    /// The thumbprint of the key that signed the request's DPoP proof, `None` if it carries none.
    pub fn check(
        &self,
        headers: &HeaderMap,
        method: &Method,
        now: Millis,
    ) -> Result<Option<String>, ProofError> {
        let invalid = |why: &str| ProofError::Invalid(why.to_owned());
        let mut values = headers.get_all(DPOP_HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(invalid("send exactly one DPoP header"));
        }
        let proof = value.to_str().map_err(|_| invalid("not a JWT"))?;
        let header = jwt::decode_header(proof).map_err(|_| invalid("not a JWT"))?;
        let typ = header.claim("typ").and_then(Value::as_str);
        if !typ.is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) {
            return Err(invalid("typ must be dpop+jwt"));
        }
        let alg = header.claim("alg").and_then(Value::as_str).unwrap_or("");
        if !CLIENT_JWT_ALGS.contains(&alg) {
            return Err(ProofError::Invalid(format!(
                "alg must be one of {}",
                CLIENT_JWT_ALGS.join(", ")
            )));
        }
        let Some(Value::Object(members)) = header.claim("jwk") else {
            return Err(invalid("the header must carry the public key as jwk"));
        };
        if PRIVATE_MEMBERS.iter().any(|m| members.contains_key(*m)) {
            return Err(invalid("the jwk must be a public key"));
        }
        let jkt = thumbprint(members).ok_or_else(|| invalid("the jwk is not a usable key"))?;
        let jwk = Jwk::from_map(members.clone()).map_err(|_| invalid("the jwk is malformed"))?;
        let verifier =
            verifier_for(alg, &jwk).ok_or_else(|| invalid("the jwk does not fit alg"))?;
        let (payload, _) = jwt::decode_with_verifier(proof, verifier.as_ref())
            .map_err(|_| invalid("the signature does not verify with the jwk"))?;
        let claims = payload.claims_set();
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let jti = text("jti").ok_or_else(|| invalid("jti is required"))?;
        if jti.is_empty() || jti.len() > MAX_JTI_LEN {
            return Err(invalid("jti must be 1 to 256 characters"));
        }
        if text("htm") != Some(method.as_str()) {
            return Err(ProofError::Invalid(format!("htm must be {method}")));
        }
        if !text("htu").is_some_and(|htu| self.names_endpoint(htu)) {
            return Err(ProofError::Invalid(format!(
                "htu must be {}",
                self.endpoint
            )));
        }
        let iat = claims
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or_else(|| invalid("iat is required"))?;
        let now_s = secs(now);
        if iat < now_s - MAX_AGE_SECS || iat > now_s + MAX_AHEAD_SECS {
            return Err(invalid("iat is too far from this server's time"));
        }
        match text("nonce") {
            None => return Err(ProofError::Nonce("this server requires a DPoP nonce")),
            Some(nonce) if !self.nonce_is_current(nonce, now) => {
                return Err(ProofError::Nonce("the DPoP nonce is not current"))
            }
            Some(_) => {}
        }
        // Remembered for as long as the proof could pass the checks above.
        let forget_at = (iat + MAX_AGE_SECS + MAX_AHEAD_SECS) * 1000;
        if !self
            .replay
            .first_use(&format!("{jkt}:{jti}"), forget_at, now)
        {
            return Err(invalid("this proof was already used (jti)"));
        }
        Ok(Some(jkt))
    }

    /// §4.3 item 9: `htu` is this endpoint's URI, ignoring query and fragment, after the syntax-based
    /// normalisation the URL parser applies (case of scheme and host, default port, dot segments).
    fn names_endpoint(&self, htu: &str) -> bool {
        let Ok(mut url) = Url::parse(htu) else {
            return false;
        };
        url.set_query(None);
        url.set_fragment(None);
        url == self.endpoint
    }
}

/// RFC 7638: the base64url SHA-256 of the key's required members, canonical JSON (members sorted,
/// no white space). Only key types a proof may use are recognised.
pub fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str);
    let required = match member("kty")? {
        "EC" => json!({"kty": "EC", "crv": member("crv")?, "x": member("x")?, "y": member("y")?}),
        "RSA" => json!({"kty": "RSA", "e": member("e")?, "n": member("n")?}),
        "OKP" => json!({"kty": "OKP", "crv": member("crv")?, "x": member("x")?}),
        _ => return None,
    };
    Some(base64url(&sha256(canonical(&required).as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thumbprint_is_rfc_7638s() {
        // RFC 7638 §3.1's example key and its thumbprint.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let Value::Object(members) = jwk else {
            unreachable!()
        };
        assert_eq!(
            thumbprint(&members).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn a_nonce_lives_for_its_window_and_the_next_only() {
        let verifier =
            DpopVerifier::new("https://cs.example/token", &Kek::from_bytes([7; 32])).unwrap();
        let issued_at = 10 * NONCE_WINDOW_MS + 1;
        let nonce = verifier.nonce(issued_at);
        let nonce = nonce.to_str().unwrap();
        assert!(verifier.nonce_is_current(nonce, issued_at));
        assert!(verifier.nonce_is_current(nonce, 12 * NONCE_WINDOW_MS - 1));
        assert!(!verifier.nonce_is_current(nonce, 12 * NONCE_WINDOW_MS));
        assert!(!verifier.nonce_is_current(nonce, 10 * NONCE_WINDOW_MS - 1));
        let other = DpopVerifier::new("https://cs.example/token", &Kek::from_bytes([8; 32]))
            .unwrap()
            .nonce(issued_at);
        assert!(
            !verifier.nonce_is_current(other.to_str().unwrap(), issued_at),
            "another deployment's nonce"
        );
        let mut forged = URL_SAFE_NO_PAD.decode(nonce).unwrap();
        forged[7] += 1;
        assert!(!verifier.nonce_is_current(&base64url(&forged), issued_at + NONCE_WINDOW_MS));
    }

    #[test]
    fn htu_ignores_query_fragment_and_spelling_but_not_the_path() {
        let verifier =
            DpopVerifier::new("https://cs.example/token", &Kek::from_bytes([7; 32])).unwrap();
        assert!(verifier.names_endpoint("https://cs.example/token"));
        assert!(verifier.names_endpoint("HTTPS://CS.example:443/token?x=1#f"));
        assert!(!verifier.names_endpoint("https://cs.example/token/"));
        assert!(!verifier.names_endpoint("https://cs.example/bc-authorize"));
        assert!(!verifier.names_endpoint("http://cs.example/token"));
    }
}
