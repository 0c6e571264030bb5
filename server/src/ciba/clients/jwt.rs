//! Checking JWTs a client signed with its registered keys (client assertions, signed requests,
//! login hint tokens).
use josekit::{
    jwk::Jwk,
    jws::{EdDSA, JwsVerifier, ES256, ES384, PS256, RS256},
    jwt,
};
use serde_json::{Map, Value};

use super::{Client, CLIENT_JWT_ALGS};
use crate::clock::{secs, Millis};

/// Why a client-signed JWT was not accepted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtRejection {
    #[error("the client has no registered keys (register it with --jwks)")]
    NoKeys,
    #[error("the JWT signature or format is invalid")]
    BadSignature,
    #[error("the JWT has expired")]
    Expired,
    #[error("{0}")]
    BadClaims(String),
}

impl Client {
    /// Verifies a JWT signed with one of the client's registered keys, checking `exp` (and `nbf`) at
    /// `now`. Audience and the other claims are the caller's, since each use has its own rules.
    pub fn verify_jwt(&self, token: &str, now: Millis) -> Result<Map<String, Value>, JwtRejection> {
        let jwks = self.jwks.as_ref().ok_or(JwtRejection::NoKeys)?;
        let header = jwt::decode_header(token).map_err(|_| JwtRejection::BadSignature)?;
        let alg = header
            .claim("alg")
            .and_then(Value::as_str)
            .ok_or(JwtRejection::BadSignature)?;
        if !CLIENT_JWT_ALGS.contains(&alg) {
            return Err(JwtRejection::BadClaims(format!(
                "the signing algorithm {alg:?} is not accepted"
            )));
        }
        let candidates: Vec<&Jwk> = match header.claim("kid").and_then(Value::as_str) {
            Some(kid) => jwks.get(kid),
            None => jwks.keys(),
        };
        let payload = candidates
            .into_iter()
            .filter_map(|jwk| verifier_for(alg, jwk))
            .find_map(|verifier| jwt::decode_with_verifier(token, verifier.as_ref()).ok())
            .map(|(payload, _)| payload)
            .ok_or(JwtRejection::BadSignature)?;
        let claims = payload.claims_set().clone();
        let now_s = secs(now);
        match claims.get("exp").and_then(Value::as_i64) {
            Some(exp) if exp <= now_s => return Err(JwtRejection::Expired),
            Some(_) => {}
            None => return Err(JwtRejection::BadClaims("the JWT has no exp claim".into())),
        }
        if claims
            .get("nbf")
            .and_then(Value::as_i64)
            .is_some_and(|nbf| nbf > now_s + 60)
        {
            return Err(JwtRejection::BadClaims(
                "the JWT is not valid yet (nbf)".into(),
            ));
        }
        Ok(claims)
    }
}

/// A verifier for `alg` with the public key `jwk`, if the key suits the algorithm.
pub fn verifier_for(alg: &str, jwk: &Jwk) -> Option<Box<dyn JwsVerifier>> {
    let verifier: Box<dyn JwsVerifier> = match alg {
        "ES256" => Box::new(ES256.verifier_from_jwk(jwk).ok()?),
        "ES384" => Box::new(ES384.verifier_from_jwk(jwk).ok()?),
        "PS256" => Box::new(PS256.verifier_from_jwk(jwk).ok()?),
        "RS256" => Box::new(RS256.verifier_from_jwk(jwk).ok()?),
        "EdDSA" => Box::new(EdDSA.verifier_from_jwk(jwk).ok()?),
        _ => return None,
    };
    Some(verifier)
}
