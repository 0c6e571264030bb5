//! Discovery metadata (OpenID Connect Discovery §3, CIBA §4) and the JWKS with key rotation.
use axum::http::StatusCode;
use serde_json::Value;
use server::{clock::Clock, signing};

use crate::{common::*, on_both_databases};

on_both_databases!(
    discovery_advertises_the_ciba_provider,
    jwks_publishes_the_signing_key_and_keeps_rotated_keys
);

async fn discovery_advertises_the_ciba_provider(db: Db) {
    let h = Harness::new(db).await;
    let r = h.get("/.well-known/openid-configuration").await;
    assert_eq!(r.status, StatusCode::OK);
    let m = &r.json;
    assert_eq!(m["issuer"], "http://localhost:3000");
    assert_eq!(m["jwks_uri"], "http://localhost:3000/jwks.json");
    assert_eq!(m["token_endpoint"], "http://localhost:3000/token");
    assert_eq!(
        m["backchannel_authentication_endpoint"],
        "http://localhost:3000/bc-authorize"
    );
    assert_eq!(
        m["backchannel_token_delivery_modes_supported"],
        serde_json::json!(["poll", "ping", "push"])
    );
    assert_eq!(m["backchannel_user_code_parameter_supported"], true);
    let list = |key: &str| -> Vec<String> {
        m[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} missing"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(list("grant_types_supported").contains(&"urn:openid:params:grant-type:ciba".to_owned()));
    // CIBA §4: the signing algorithms for signed requests; `none` is never allowed.
    let algs = list("backchannel_authentication_request_signing_alg_values_supported");
    assert!(algs.contains(&"ES256".to_owned()) && !algs.contains(&"none".to_owned()));
    assert_eq!(
        list("token_endpoint_auth_methods_supported"),
        [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ]
    );
    assert_eq!(
        list("authorization_details_types_supported"),
        ["agent_action"]
    );
    assert!(list("scopes_supported").contains(&"openid".to_owned()));
    assert!(
        list("claims_supported").contains(&"urn:openid:params:jwt:claim:auth_req_id".to_owned())
    );
    assert_eq!(list("id_token_signing_alg_values_supported"), ["ES256"]);
}

async fn jwks_publishes_the_signing_key_and_keeps_rotated_keys(db: Db) {
    let h = Harness::new(db).await;
    let kids = |r: &Response| -> Vec<String> {
        r.json["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = h.get("/jwks.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/jwk-set+json");
    let first = kids(&r);
    assert_eq!(first.len(), 1);
    let key = &r.json["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert!(
        key.get("d").is_none(),
        "the private part is never published"
    );

    // A token signed before rotation still verifies while it can be valid.
    let creds = h.poll_client().await;
    let approver = h.approver(APPROVER, None).await;
    let id = h.approved(&creds, &approver.id).await;
    let tokens = h.poll(&creds, &id).await.json;
    assert_eq!(
        header_of(tokens["id_token"].as_str().unwrap())["kid"],
        Value::String(first[0].clone())
    );

    h.clock.advance_secs(1);
    let new_kid = signing::rotate(&h.store, &test_kek(), h.clock.now())
        .await
        .unwrap();
    h.server.ciba.refresh().await.unwrap();
    let both = kids(&h.get("/jwks.json").await);
    assert_eq!(
        both,
        [new_kid.clone(), first[0].clone()],
        "newest first, the old one kept"
    );
    assert_eq!(h.server.ciba.keys().active_kid(), new_kid);

    // Once every token the old key signed has expired (300 s by default), it is withdrawn.
    h.clock.advance_secs(301);
    h.server.ciba.refresh().await.unwrap();
    assert_eq!(kids(&h.get("/jwks.json").await), [new_kid]);
}
