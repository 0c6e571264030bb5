//! Clients with registered keys: `private_key_jwt` authentication (RFC 7523 §3), `login_hint_token`
//! (CIBA §7.1, §13 expired_login_hint_token) and signed authentication requests (CIBA §7.1.1).
use axum::http::StatusCode;
use josekit::{
    jwk::KeyPair,
    jws::{alg::ecdsa::EcdsaJwsSigner, JwsHeader, ES256},
    jwt::{self, JwtPayload},
};
use serde_json::{json, Value};
use server::{
    ciba::{clients, AuthMethod, DeliveryMode},
    clock::{secs, Clock},
};

use crate::{common::*, on_both_databases};

on_both_databases!(
    private_key_jwt_assertions_authenticate_once,
    login_hint_tokens_name_the_approver_until_they_expire,
    signed_requests_carry_every_parameter,
    client_jwts_are_typed_short_lived_and_used_once_on_every_instance,
);

const ISSUER: &str = "http://localhost:3000";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct KeyedClient {
    id: String,
    signer: EcdsaJwsSigner,
}

impl KeyedClient {
    fn sign(&self, claims: Value) -> String {
        self.sign_typed(claims, None)
    }

    fn sign_typed(&self, claims: Value, typ: Option<&str>) -> String {
        let mut header = JwsHeader::new();
        header.set_key_id("k1");
        if let Some(typ) = typ {
            header.set_token_type(typ);
        }
        let payload = JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();
        jwt::encode_with_signer(&payload, &header, &self.signer).unwrap()
    }

    fn assertion(&self, now: i64, jti: &str, aud: &str) -> String {
        self.sign(json!({"iss": self.id, "sub": self.id, "aud": aud, "jti": jti, "iat": secs(now), "exp": secs(now) + 60}))
    }
}

fn key_pair() -> (String, EcdsaJwsSigner) {
    let pair = ES256.generate_key_pair().unwrap();
    let mut public = pair.to_jwk_public_key();
    public.set_key_id("k1");
    let mut private = pair.to_jwk_private_key();
    private.set_key_id("k1");
    (
        json!({"keys": [Value::Object(public.as_ref().clone())]}).to_string(),
        ES256.signer_from_jwk(&private).unwrap(),
    )
}

async fn keyed_client(h: &Harness) -> KeyedClient {
    let (jwks, signer) = key_pair();
    let new = clients::NewClient {
        name: "Keyed agent".into(),
        delivery_mode: DeliveryMode::Poll,
        notify_url: None,
        scopes: vec![],
        auth_method: AuthMethod::PrivateKeyJwt,
        jwks: Some(jwks),
        resource_server: false,
        dpop_bound: false,
    };
    let creds = h.register(new).await;
    assert!(
        creds.client_secret.is_none(),
        "key-authenticated clients get no secret"
    );
    KeyedClient {
        id: creds.client_id,
        signer,
    }
}

async fn bc_authorize_with(h: &Harness, assertion: &str, extra: &[(&str, &str)]) -> Response {
    let details = action_details();
    let mut form = vec![
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    if !extra.iter().any(|(k, _)| *k == "request") {
        form.extend([
            ("scope", "openid"),
            ("authorization_details", details.as_str()),
        ]);
        if !extra.iter().any(|(k, _)| *k == "login_hint_token") {
            form.push(("login_hint", APPROVER));
        }
    }
    form.extend_from_slice(extra);
    h.post("/bc-authorize", None, &form).await
}

async fn private_key_jwt_assertions_authenticate_once(db: Db) {
    let h = Harness::new(db).await;
    h.approver(APPROVER, None).await;
    let client = keyed_client(&h).await;
    let now = h.clock.now();
    let good = client.assertion(now, "a1", ISSUER);
    let r = bc_authorize_with(&h, &good, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // RFC 7523 §3: a jti is accepted once.
    bc_authorize_with(&h, &good, &[])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    // The token endpoint is also an accepted audience; another server is not.
    let poll = |assertion: String, id: String| {
        let h = &h;
        async move {
            let form = [
                ("grant_type", "urn:openid:params:grant-type:ciba"),
                ("auth_req_id", id.as_str()),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion.as_str()),
            ];
            h.post("/token", None, &form).await
        }
    };
    let id = r.json["auth_req_id"].as_str().unwrap().to_owned();
    poll(
        client.assertion(now, "a2", &format!("{ISSUER}/token")),
        id.clone(),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "authorization_pending");
    bc_authorize_with(
        &h,
        &client.assertion(now, "a3", "https://other.example"),
        &[],
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    let expired = client.sign(json!({"iss": client.id, "sub": client.id, "aud": ISSUER, "jti": "a4", "exp": secs(now) - 1}));
    bc_authorize_with(&h, &expired, &[])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    // Signed by a key that is not the client's.
    let impostor = KeyedClient {
        id: client.id.clone(),
        signer: key_pair().1,
    };
    bc_authorize_with(&h, &impostor.assertion(now, "a5", ISSUER), &[])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    assert_eq!(h.count_requests("1 = 1").await, 1);
}

async fn login_hint_tokens_name_the_approver_until_they_expire(db: Db) {
    let h = Harness::new(db).await;
    let jane = h.approver(APPROVER, None).await;
    let client = keyed_client(&h).await;
    let now = h.clock.now();
    let hint = client
        .sign(json!({"sub_id": {"format": "email", "email": APPROVER}, "exp": secs(now) + 120}));
    let r = bc_authorize_with(
        &h,
        &client.assertion(now, "b1", ISSUER),
        &[("login_hint_token", &hint)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let row = h
        .store
        .auth_request_row(r.json["auth_req_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.approver_id, Some(jane.id.clone()));
    let stale = client
        .sign(json!({"sub_id": {"format": "email", "email": APPROVER}, "exp": secs(now) - 5}));
    bc_authorize_with(
        &h,
        &client.assertion(now, "b2", ISSUER),
        &[("login_hint_token", &stale)],
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "expired_login_hint_token");
    let nobody = client.sign(
        json!({"sub_id": {"format": "email", "email": "ghost@example.com"}, "exp": secs(now) + 60}),
    );
    bc_authorize_with(
        &h,
        &client.assertion(now, "b3", ISSUER),
        &[("login_hint_token", &nobody)],
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "unknown_user_id");
    // CIBA §7.1 leaves the subject's form to the deployment: a group this agent may address.
    use server::admin::confirmation::Change;
    let store = &h.store;
    let as_operator = |change: Change| async move {
        server::admin::groups::change_as_operator(store, &change, now)
            .await
            .unwrap()
            .unwrap();
    };
    as_operator(Change::CreateGroup {
        name: "oncall".into(),
    })
    .await;
    let group = h.store.group_by_name("oncall").await.unwrap().unwrap().id;
    as_operator(Change::AddToGroup {
        group: group.clone(),
        approver: row.approver_id.clone().unwrap(),
    })
    .await;
    let to_group = client
        .sign(json!({"sub_id": {"format": "group", "group": "oncall"}, "exp": secs(now) + 60}));
    bc_authorize_with(
        &h,
        &client.assertion(now, "b4", ISSUER),
        &[("login_hint_token", &to_group)],
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "unknown_user_id");
    as_operator(Change::AllowGroup {
        agent: client.id.clone(),
        group: group.clone(),
    })
    .await;
    let r = bc_authorize_with(
        &h,
        &client.assertion(now, "b5", ISSUER),
        &[("login_hint_token", &to_group)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let grouped = h
        .store
        .auth_request_row(r.json["auth_req_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((grouped.approver_id, grouped.group_id), (None, Some(group)));
    // A client without registered keys cannot vouch for a hint token.
    let secret_client = h.poll_client().await;
    h.bc_authorize(
        &secret_client,
        APPROVER,
        &[("login_hint", ""), ("login_hint_token", &hint)],
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
}

async fn signed_requests_carry_every_parameter(db: Db) {
    let h = Harness::new(db).await;
    h.approver(APPROVER, None).await;
    let client = keyed_client(&h).await;
    let now = h.clock.now();
    let request = |jti: &str, extra: Value| {
        let mut claims = json!({
            "iss": client.id, "aud": ISSUER, "jti": jti, "iat": secs(now), "nbf": secs(now), "exp": secs(now) + 300,
            "scope": "openid", "login_hint": APPROVER, "binding_message": "SIGNED-1",
            "requested_expiry": 120, "authorization_details": action_value(),
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        client.sign(claims)
    };
    let r = bc_authorize_with(
        &h,
        &client.assertion(now, "c1", ISSUER),
        &[("request", &request("r1", json!({})))],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["expires_in"], 120);
    let row = h
        .store
        .auth_request_row(r.json["auth_req_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.binding_message.as_deref(), Some("SIGNED-1"));
    // The same signed request is not accepted twice.
    bc_authorize_with(
        &h,
        &client.assertion(now, "c2", ISSUER),
        &[("request", &request("r1", json!({})))],
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    // Parameters outside the signed request are refused rather than silently mixed in.
    bc_authorize_with(
        &h,
        &client.assertion(now, "c3", ISSUER),
        &[("request", &request("r2", json!({}))), ("scope", "openid")],
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    for (jti, broken) in [
        ("r3", json!({"nbf": null})),
        ("r4", json!({"aud": "https://other.example"})),
        ("r5", json!({"iss": "someone"})),
    ] {
        bc_authorize_with(
            &h,
            &client.assertion(now, &format!("c-{jti}"), ISSUER),
            &[("request", &request(jti, broken))],
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    // The signed parameters are validated like form ones.
    let no_consequence =
        json!({"authorization_details": [{"type": "agent_action", "action": "a", "target": "t"}]});
    bc_authorize_with(
        &h,
        &client.assertion(now, "c6", ISSUER),
        &[("request", &request("r6", no_consequence))],
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_authorization_details");
    assert_eq!(h.count_requests("1 = 1").await, 1);
}

async fn client_jwts_are_typed_short_lived_and_used_once_on_every_instance(db: Db) {
    let h = Harness::new(db).await;
    h.approver(APPROVER, None).await;
    let client = keyed_client(&h).await;
    let now = secs(h.clock.now());
    let claims = |jti: &str, exp: i64| json!({"iss": client.id, "sub": client.id, "aud": ISSUER, "jti": jti, "exp": exp});
    let refused = |assertion: String| {
        let h = &h;
        async move {
            bc_authorize_with(h, &assertion, &[])
                .await
                .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
        }
    };
    // An exp so large that, scaled to milliseconds, it once wrapped to the past in the replay
    // memory, which then forgot the jti at once: the same assertion authenticated again and again.
    let huge = client.sign(claims("b1", i64::MAX / 100));
    refused(huge.clone()).await;
    refused(huge).await;
    // RFC 7523 leaves the lifetime to the server: at most 10 minutes here, and iat not ahead.
    refused(client.sign(claims("b2", now + 3600))).await;
    let mut ahead = claims("b3", now + 60);
    ahead["iat"] = json!(now + 600);
    refused(client.sign(ahead)).await;
    // RFC 8725 §3.11: a JWT typed for something else is no client assertion.
    refused(client.sign_typed(claims("b4", now + 60), Some("at+jwt"))).await;
    refused(client.sign_typed(claims("b5", now + 60), Some("oauth-authz-req+jwt"))).await;
    let typed = client.sign_typed(claims("b6", now + 60), Some("client-authentication+jwt"));
    assert_eq!(
        bc_authorize_with(&h, &typed, &[]).await.status,
        StatusCode::OK
    );

    // RFC 7523 §3 item 7 across instances: the jti is remembered in the database.
    let once = client.sign(claims("b7", now + 300));
    let first = bc_authorize_with(&h, &once, &[]).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let other = h.another_instance().await;
    let details = action_details();
    let form = [
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", once.as_str()),
        ("scope", "openid"),
        ("login_hint", APPROVER),
        ("authorization_details", details.as_str()),
    ];
    post_form_to(&other, "/bc-authorize", &form)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    // Once it has expired, the sweep forgets it; an expired JWT is refused anyway.
    h.clock.advance_secs(301);
    let swept = h.store.sweep_expired(h.clock.now()).await.unwrap();
    assert_eq!(swept.used_jtis, 2);
    refused(once).await;
    assert_eq!(h.count_requests("1 = 1").await, 2);
}
