//! DPoP for the CIBA grant (RFC 9449): a proof on the token request binds the tokens to the client's
//! key (§5, §6.1 `cnf.jkt`), with server nonces (§8), `jti` replay and `htm`/`htu`/`iat` checks
//! (§4.3, §11.1); a request can be bound to a key at /bc-authorize (`dpop_jkt`, as §10 does for the
//! authorization code); a client can be registered to require DPoP (§5.2).
use axum::http::StatusCode;
use josekit::{
    jwk::Jwk,
    jws::{JwsHeader, ES256},
    jwt::{self, JwtPayload},
};
use serde_json::{json, Map, Value};
use server::{
    ciba::{clients, AuthMethod, DeliveryMode},
    clock::{secs, Clock},
    oauth::dpop::thumbprint,
};

use crate::{common::*, on_both_databases};

on_both_databases!(
    a_proof_binds_the_tokens_to_the_clients_key,
    bad_proofs_are_refused_without_spending_the_grant,
    a_client_registered_for_dpop_must_send_a_proof,
    a_request_bound_with_dpop_jkt_is_redeemed_only_by_that_key,
    a_binding_changed_in_the_database_is_caught
);

/// A client's DPoP key pair.
pub struct DpopKey {
    private: Jwk,
    public: Map<String, Value>,
    pub jkt: String,
}

impl DpopKey {
    pub fn new() -> DpopKey {
        let pair = ES256.generate_key_pair().unwrap();
        let public = pair.to_jwk_public_key().as_ref().clone();
        DpopKey {
            private: pair.to_jwk_private_key(),
            jkt: thumbprint(&public).unwrap(),
            public,
        }
    }

    /// A proof with these claims, `typ` dpop+jwt and the public key in the header, unless `adjust`
    /// changes the header.
    pub fn sign_with(&self, claims: Value, adjust: impl FnOnce(&mut JwsHeader)) -> String {
        let mut header = JwsHeader::new();
        header.set_token_type("dpop+jwt");
        header
            .set_claim("jwk", Some(Value::Object(self.public.clone())))
            .unwrap();
        adjust(&mut header);
        let payload = JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();
        let signer = ES256.signer_from_jwk(&self.private).unwrap();
        jwt::encode_with_signer(&payload, &header, &signer).unwrap()
    }

    /// A valid proof for POST /token at `now` with `nonce`.
    pub fn proof(&self, htu: &str, nonce: Option<&str>, now: i64) -> String {
        self.sign_with(proof_claims(htu, nonce, now), |_| {})
    }
}

pub fn proof_claims(htu: &str, nonce: Option<&str>, now: i64) -> Value {
    let mut claims = json!({
        "jti": server::secrets::random_token(12),
        "htm": "POST",
        "htu": htu,
        "iat": secs(now),
    });
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    claims
}

/// A token request for `id` with a fresh proof by `key` (with `nonce`, if given).
async fn poll_proved(
    h: &Harness,
    creds: &Creds,
    id: &str,
    key: &DpopKey,
    htu: &str,
    nonce: Option<&str>,
) -> Response {
    h.poll_with_proofs(creds, id, &[&key.proof(htu, nonce, h.clock.now())])
        .await
}

async fn token_endpoint(h: &Harness) -> String {
    let discovery = h.get("/.well-known/openid-configuration").await;
    discovery.json["token_endpoint"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn nonce_of(r: &Response) -> String {
    r.headers
        .get("dpop-nonce")
        .expect("every token endpoint answer carries a DPoP nonce")
        .to_str()
        .unwrap()
        .to_owned()
}

async fn a_proof_binds_the_tokens_to_the_clients_key(db: Db) {
    let h = Harness::new(db).await;
    let discovery = h.get("/.well-known/openid-configuration").await;
    assert!(discovery.json["dpop_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("ES256")));
    let htu = token_endpoint(&h).await;
    let creds = h.poll_client().await;
    let tool = h.resource_server().await;
    let jane = h.approver(APPROVER, None).await;
    let key = DpopKey::new();

    // §8: without a nonce the server asks for one, and hands it out.
    let waiting = h.start(&creds, APPROVER).await;
    let first = poll_proved(&h, &creds, &waiting, &key, &htu, None).await;
    first.assert_error(StatusCode::BAD_REQUEST, "use_dpop_nonce");
    let nonce = nonce_of(&first);
    // With it, the poll is answered as any other.
    let pending = poll_proved(&h, &creds, &waiting, &key, &htu, Some(&nonce)).await;
    pending.assert_error(StatusCode::BAD_REQUEST, "authorization_pending");
    let nonce = nonce_of(&pending);

    let id = h.approved(&creds, &jane.id).await;
    h.clock.advance_secs(6);
    let tokens = poll_proved(&h, &creds, &id, &key, &htu, Some(&nonce)).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    // §5: token_type DPoP; §6.1: the access token names the key.
    assert_eq!(tokens.json["token_type"], "DPoP");
    let access_token = tokens.json["access_token"].as_str().unwrap();
    assert_eq!(claims(access_token)["cnf"], json!({ "jkt": key.jkt }));
    assert!(claims(tokens.json["id_token"].as_str().unwrap())
        .get("cnf")
        .is_none());
    // §6.2: introspection reports the binding.
    let introspected = h
        .post("/introspect", Some(&tool), &[("token", access_token)])
        .await;
    assert_eq!(introspected.json["active"], true);
    assert_eq!(introspected.json["token_type"], "DPoP");
    assert_eq!(introspected.json["cnf"]["jkt"], key.jkt.as_str());

    // Without a proof, tokens stay bearer tokens.
    let bearer_id = h.approved(&creds, &jane.id).await;
    let bearer = h.poll(&creds, &bearer_id).await;
    assert_eq!(bearer.json["token_type"], "Bearer");
    assert!(claims(bearer.json["access_token"].as_str().unwrap())
        .get("cnf")
        .is_none());
}

async fn bad_proofs_are_refused_without_spending_the_grant(db: Db) {
    let h = Harness::new(db).await;
    let htu = token_endpoint(&h).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let id = h.approved(&creds, &jane.id).await;
    let key = DpopKey::new();
    // Any answer of the token endpoint hands out a nonce; this one spends nothing.
    let nonce = nonce_of(&h.poll(&creds, "unknown").await);
    let now = h.clock.now();
    let good = || proof_claims(&htu, Some(&nonce), now);
    let with = |name: &str, value: Value| {
        let mut claims = good();
        claims[name] = value;
        key.sign_with(claims, |_| {})
    };
    let without = |name: &str| {
        let mut claims = good();
        claims.as_object_mut().unwrap().remove(name);
        key.sign_with(claims, |_| {})
    };
    let another = DpopKey::new();
    let mut private_jwk = key.public.clone();
    private_jwk.insert("d".into(), key.private.parameter("d").unwrap().clone());
    let unsigned = {
        let b64 = |v: Value| server::secrets::base64url(v.to_string().as_bytes());
        let header = json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.public});
        format!("{}.{}.", b64(header), b64(good()))
    };
    // RFC 9449 §4.3, item by item.
    let refused: Vec<(&str, String)> = vec![
        ("not a JWT", "not-a-jwt".into()),
        (
            "item 4: typ",
            key.sign_with(good(), |h| h.set_token_type("JWT")),
        ),
        ("item 5: alg none", unsigned),
        ("item 6: signature", {
            let proof = key.proof(&htu, Some(&nonce), now);
            let forged = another.proof(&htu, Some(&nonce), now);
            let (head, _) = proof.rsplit_once('.').unwrap();
            let (_, signature) = forged.rsplit_once('.').unwrap();
            format!("{head}.{signature}")
        }),
        (
            "item 7: private key",
            key.sign_with(good(), |h| {
                h.set_claim("jwk", Some(Value::Object(private_jwk.clone())))
                    .unwrap();
            }),
        ),
        (
            "no jwk",
            key.sign_with(good(), |h| h.set_claim("jwk", None).unwrap()),
        ),
        ("item 8: htm", with("htm", json!("GET"))),
        (
            "item 9: htu",
            with("htu", json!(htu.replace("/token", "/bc-authorize"))),
        ),
        ("item 11: iat too old", with("iat", json!(secs(now) - 301))),
        ("item 11: iat ahead", with("iat", json!(secs(now) + 61))),
        ("no jti", without("jti")),
        ("no htu", without("htu")),
    ];
    for (what, proof) in &refused {
        let r = h.poll_with_proofs(&creds, &id, &[proof]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text);
        assert_eq!(r.json["error"], "invalid_dpop_proof", "{what}: {}", r.text);
    }
    // Exactly one DPoP header (item 1).
    let (a, b) = (
        key.proof(&htu, Some(&nonce), now),
        key.proof(&htu, Some(&nonce), now),
    );
    h.poll_with_proofs(&creds, &id, &[&a, &b])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof");
    // §8: a nonce this server did not make, or one past its time, asks for a fresh one.
    h.poll_with_proofs(&creds, &id, &[&key.proof(&htu, Some("made-up"), now)])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "use_dpop_nonce");
    h.clock.advance_secs(241);
    let stale = poll_proved(&h, &creds, &id, &key, &htu, Some(&nonce)).await;
    stale.assert_error(StatusCode::BAD_REQUEST, "use_dpop_nonce");
    assert_ne!(nonce_of(&stale), nonce);
    assert_eq!(
        h.count_requests("status = 'approved'").await,
        1,
        "no refused proof spent the grant"
    );

    // §11.1: a proof is accepted once. The first use redeems; the replay is refused as a proof,
    // before it could count as a second redemption (which would revoke the tokens).
    let nonce = nonce_of(&stale);
    let proof = key.proof(&htu, Some(&nonce), h.clock.now());
    let tokens = h.poll_with_proofs(&creds, &id, &[&proof]).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    h.poll_with_proofs(&creds, &id, &[&proof])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof");
    assert_eq!(h.count_requests("status = 'redeemed'").await, 1);
}

async fn dpop_client(h: &Harness, delivery: DeliveryMode) -> Creds {
    let new = clients::NewClient {
        name: "Careful agent".into(),
        delivery_mode: delivery,
        notify_url: (delivery != DeliveryMode::Poll).then(|| "https://agent.example/cb".into()),
        scopes: vec!["email".into()],
        auth_method: AuthMethod::ClientSecretBasic,
        jwks: None,
        resource_server: false,
        dpop_bound: true,
    };
    let creds = h.register(new).await;
    Creds {
        id: creds.client_id,
        secret: creds.client_secret.unwrap(),
    }
}

async fn a_client_registered_for_dpop_must_send_a_proof(db: Db) {
    let h = Harness::new(db).await;
    let htu = token_endpoint(&h).await;
    let jane = h.approver(APPROVER, None).await;
    let creds = dpop_client(&h, DeliveryMode::Poll).await;
    let id = h.approved(&creds, &jane.id).await;
    // §5.2 `dpop_bound_access_tokens`: a token request without a proof is refused, and the grant
    // stays for the proper request.
    let refused = h.poll(&creds, &id).await;
    refused.assert_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof");
    let key = DpopKey::new();
    let proof = key.proof(&htu, Some(&nonce_of(&refused)), h.clock.now());
    let tokens = h.poll_with_proofs(&creds, &id, &[&proof]).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    assert_eq!(tokens.json["token_type"], "DPoP");

    // A push client that must use DPoP binds each request to its key: its tokens are delivered,
    // so the binding cannot come from a token request.
    let push = dpop_client(&h, DeliveryMode::Push).await;
    h.bc_authorize(&push, APPROVER, &[("client_notification_token", "t")])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    let bound = h
        .bc_authorize(
            &push,
            APPROVER,
            &[("client_notification_token", "t"), ("dpop_jkt", &key.jkt)],
        )
        .await;
    assert_eq!(bound.status, StatusCode::OK, "{}", bound.text);
}

async fn a_request_bound_with_dpop_jkt_is_redeemed_only_by_that_key(db: Db) {
    let h = Harness::new(db).await;
    let htu = token_endpoint(&h).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let key = DpopKey::new();
    let thief = DpopKey::new();
    let not_base64url = format!("{}+", &key.jkt[..42]);
    for malformed in ["abc", &format!("{}=", key.jkt), &not_base64url] {
        h.bc_authorize(&creds, APPROVER, &[("dpop_jkt", malformed)])
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let id = h
        .approved_with(&creds, &jane.id, &[("dpop_jkt", &key.jkt)])
        .await;

    // Stolen client credentials and auth_req_id are not enough: neither a bearer request nor
    // another key's proof redeems, and the grant stays for its holder.
    let bearer = h.poll(&creds, &id).await;
    bearer.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    let nonce = nonce_of(&bearer);
    poll_proved(&h, &creds, &id, &thief, &htu, Some(&nonce))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(h.count_requests("status = 'approved'").await, 1);
    let tokens = poll_proved(&h, &creds, &id, &key, &htu, Some(&nonce)).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    assert_eq!(
        claims(tokens.json["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.jkt.as_str()
    );
}

/// From below the API: whoever can write the database rebinds an approved request to their own key.
/// The binding is part of the approved statement, so the decision record no longer matches.
async fn a_binding_changed_in_the_database_is_caught(db: Db) {
    let h = Harness::new(db).await;
    let htu = token_endpoint(&h).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let key = DpopKey::new();
    let thief = DpopKey::new();
    let id = h
        .approved_with(&creds, &jane.id, &[("dpop_jkt", &key.jkt)])
        .await;
    sqlx::query("UPDATE auth_requests SET dpop_jkt = $1 WHERE id = $2")
        .bind(&thief.jkt)
        .bind(&id)
        .execute(h.store.pool())
        .await
        .unwrap();
    let nonce = nonce_of(&h.poll(&creds, &id).await);
    poll_proved(&h, &creds, &id, &thief, &htu, Some(&nonce))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    let alerts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM consent_alerts")
        .fetch_one(h.store.pool())
        .await
        .unwrap();
    assert_eq!(alerts, 1);
    assert_eq!(h.count_requests("status = 'approved'").await, 1);
}
