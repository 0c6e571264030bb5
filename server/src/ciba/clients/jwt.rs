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

/// What a client-signed JWT is for. Each use refuses a JWT typed for another (RFC 8725 §3.11), and
/// the JWTs that are accepted once carry a short lifetime, so the record of their `jti`s stays small.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwtUse {
    /// `private_key_jwt` client authentication (RFC 7523 §3).
    ClientAssertion,
    /// A signed authentication request (CIBA §7.1.1, RFC 9101).
    SignedRequest,
    /// A `login_hint_token` (CIBA §7.1).
    LoginHintToken,
}

/// The longest a once-only client JWT may live (`exp` after now, and `iat` before now).
pub const MAX_ONCE_LIFETIME_SECS: i64 = 600;

/// How far a client's clock may run ahead of this server's.
const CLOCK_SKEW_SECS: i64 = 60;

impl JwtUse {
    /// The `typ` values this use accepts: none or the generic "JWT" (what most clients send), or its
    /// own media type. Any other explicit type names a different kind of token.
    fn accepts_type(self, typ: Option<&str>) -> bool {
        let Some(typ) = typ else {
            return true;
        };
        let typ = typ.to_ascii_lowercase();
        let typ = typ.strip_prefix("application/").unwrap_or(&typ);
        let own = match self {
            JwtUse::ClientAssertion => "client-authentication+jwt",
            JwtUse::SignedRequest => "oauth-authz-req+jwt",
            JwtUse::LoginHintToken => "jwt",
        };
        typ == "jwt" || typ == own
    }

    /// Whether the JWT is accepted once only (so its `jti` is remembered until it expires).
    pub fn once_only(self) -> bool {
        matches!(self, JwtUse::ClientAssertion | JwtUse::SignedRequest)
    }
}

impl Client {
    /// Verifies a JWT signed with one of the client's registered keys for `purpose`: its `typ`, and
    /// `exp`, `nbf` and `iat` at `now` (once-only JWTs within [`MAX_ONCE_LIFETIME_SECS`]). Audience
    /// and the other claims are the caller's, since each use has its own rules.
    pub fn verify_jwt(
        &self,
        token: &str,
        purpose: JwtUse,
        now: Millis,
    ) -> Result<Map<String, Value>, JwtRejection> {
        let jwks = self.jwks.as_ref().ok_or(JwtRejection::NoKeys)?;
        let header = jwt::decode_header(token).map_err(|_| JwtRejection::BadSignature)?;
        if !purpose.accepts_type(header.claim("typ").and_then(Value::as_str)) {
            return Err(JwtRejection::BadClaims(
                "the JWT's typ names another kind of token".into(),
            ));
        }
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
        check_times(&claims, purpose, secs(now))?;
        Ok(claims)
    }
}

/// `exp`, `nbf` and `iat` (seconds) against `now_s`. Every comparison is of seconds as given, never
/// scaled, so no value can overflow.
fn check_times(
    claims: &Map<String, Value>,
    purpose: JwtUse,
    now_s: i64,
) -> Result<(), JwtRejection> {
    let bad = |why: &str| Err(JwtRejection::BadClaims(why.into()));
    let time = |name: &str| -> Result<Option<i64>, JwtRejection> {
        match claims.get(name) {
            None => Ok(None),
            Some(value) => value
                .as_i64()
                .map(Some)
                .ok_or_else(|| JwtRejection::BadClaims(format!("{name} must be whole seconds"))),
        }
    };
    let Some(exp) = time("exp")? else {
        return bad("the JWT has no exp claim");
    };
    if exp <= now_s {
        return Err(JwtRejection::Expired);
    }
    if time("nbf")?.is_some_and(|nbf| nbf > now_s.saturating_add(CLOCK_SKEW_SECS)) {
        return bad("the JWT is not valid yet (nbf)");
    }
    let iat = time("iat")?;
    if iat.is_some_and(|iat| iat > now_s.saturating_add(CLOCK_SKEW_SECS)) {
        return bad("the JWT was issued in the future (iat)");
    }
    if purpose.once_only() {
        if exp > now_s.saturating_add(MAX_ONCE_LIFETIME_SECS) {
            return bad("exp is more than 10 minutes away: make a fresh, short-lived JWT");
        }
        if iat.is_some_and(|iat| iat < now_s.saturating_sub(MAX_ONCE_LIFETIME_SECS)) {
            return bad("the JWT was issued more than 10 minutes ago (iat)");
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use proptest::prelude::*;

    use super::*;
    use crate::store::clients::ClientRow;

    /// A client with one registered P-256 key.
    fn keyed_client() -> Client {
        let pair = ES256.generate_key_pair().unwrap();
        let mut public = pair.to_jwk_public_key();
        public.set_key_id("k1");
        let jwks = serde_json::json!({"keys": [Value::Object(public.as_ref().clone())]});
        Client::from_row(ClientRow {
            id: "c".into(),
            name: "c".into(),
            delivery_mode: "poll".into(),
            notify_url: None,
            scopes: "openid".into(),
            auth_method: "private_key_jwt".into(),
            secret_hash: None,
            jwks: Some(jwks.to_string()),
            disabled: 0,
            last_disabled_at: None,
            created_at: 0,
            updated_at: 0,
            resource_server: 0,
            dpop_bound: 0,
        })
        .unwrap()
    }

    /// Three base64url parts, of JSON near a JWS header and claims, or of anything.
    fn near_jws() -> impl Strategy<Value = String> {
        let part = prop_oneof![
            "\\PC{0,60}",
            Just(r#"{"alg":"ES256","kid":"k1"}"#.to_owned()),
            Just(r#"{"alg":"none"}"#.to_owned()),
            Just(r#"{"alg":"HS256","typ":"JWT"}"#.to_owned()),
            Just(r#"{"alg":"ES256","kid":"k1","typ":"at+jwt"}"#.to_owned()),
            Just(r#"{"exp":9223372036854775807,"iat":-1}"#.to_owned()),
        ];
        (
            part.clone(),
            part,
            proptest::collection::vec(any::<u8>(), 0..80),
        )
            .prop_map(|(h, c, s)| {
                format!(
                    "{}.{}.{}",
                    URL_SAFE_NO_PAD.encode(h),
                    URL_SAFE_NO_PAD.encode(c),
                    URL_SAFE_NO_PAD.encode(s)
                )
            })
    }

    proptest! {
        /// Any text, and JWS near what a client signs, is refused without panic (none of it is
        /// signed by the client's key).
        #[test]
        fn any_token_is_refused_without_panic(text in "\\PC{0,300}", jws in near_jws()) {
            let client = keyed_client();
            for purpose in [JwtUse::ClientAssertion, JwtUse::SignedRequest, JwtUse::LoginHintToken] {
                prop_assert!(client.verify_jwt(&text, purpose, 1_700_000_000_000).is_err());
                prop_assert!(client.verify_jwt(&jws, purpose, 1_700_000_000_000).is_err());
            }
        }

        /// Any claims' times are checked without overflow or panic.
        #[test]
        fn any_times_are_checked_without_panic(exp in any::<i64>(), iat in any::<Option<i64>>(), nbf in any::<Option<i64>>(), now in any::<i64>()) {
            let mut claims = serde_json::json!({"exp": exp});
            if let Some(iat) = iat { claims["iat"] = iat.into(); }
            if let Some(nbf) = nbf { claims["nbf"] = nbf.into(); }
            let claims = claims.as_object().unwrap().clone();
            for purpose in [JwtUse::ClientAssertion, JwtUse::LoginHintToken] {
                if check_times(&claims, purpose, now).is_ok() && purpose.once_only() {
                    prop_assert!(exp > now && exp - now <= MAX_ONCE_LIFETIME_SECS);
                }
            }
        }
    }

    fn claims(json: Value) -> Map<String, Value> {
        json.as_object().unwrap().clone()
    }

    #[test]
    fn once_only_jwts_are_short_lived_and_no_time_overflows() {
        let now = 1_700_000_000;
        let check = |json, purpose| check_times(&claims(json), purpose, now);
        let once = JwtUse::ClientAssertion;
        assert_eq!(check(serde_json::json!({"exp": now + 300}), once), Ok(()));
        assert!(check(serde_json::json!({"exp": now + 601}), once).is_err());
        // A huge exp once wrapped to a past time when scaled to milliseconds.
        assert!(check(serde_json::json!({"exp": i64::MAX}), once).is_err());
        assert!(check(serde_json::json!({"exp": u64::MAX}), once).is_err());
        assert!(check(serde_json::json!({"exp": 1e300}), once).is_err());
        assert_eq!(
            check(serde_json::json!({"exp": now}), once),
            Err(JwtRejection::Expired)
        );
        assert!(check(serde_json::json!({"exp": now + 60, "iat": now + 120}), once).is_err());
        assert!(check(serde_json::json!({"exp": now + 60, "iat": now - 601}), once).is_err());
        assert!(check(serde_json::json!({"exp": now + 60, "nbf": i64::MAX}), once).is_err());
        assert!(check(serde_json::json!({"exp": now + 60, "iat": i64::MIN}), once).is_err());
        // A login_hint_token may live longer; it is not accepted once only.
        assert_eq!(
            check(
                serde_json::json!({"exp": now + 86_400}),
                JwtUse::LoginHintToken
            ),
            Ok(())
        );
    }

    #[test]
    fn each_use_refuses_tokens_typed_for_another() {
        use JwtUse::*;
        for purpose in [ClientAssertion, SignedRequest, LoginHintToken] {
            assert!(purpose.accepts_type(None));
            assert!(purpose.accepts_type(Some("JWT")));
            for other in [
                "at+jwt",
                "dpop+jwt",
                "countersign-decision+jwt",
                "secevent+jwt",
            ] {
                assert!(!purpose.accepts_type(Some(other)), "{purpose:?} {other}");
            }
        }
        assert!(ClientAssertion.accepts_type(Some("client-authentication+jwt")));
        assert!(!ClientAssertion.accepts_type(Some("oauth-authz-req+jwt")));
        assert!(SignedRequest.accepts_type(Some("application/oauth-authz-req+jwt")));
        assert!(!SignedRequest.accepts_type(Some("client-authentication+jwt")));
    }
}
