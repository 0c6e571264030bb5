//! Token revocation (RFC 7009) and who may introspect (RFC 7662 §2.1): an agent revokes its access
//! token once the action is done, and the tools it calls, registered as resource servers, then see it
//! inactive; agents themselves cannot scan tokens at the introspection endpoint.
use axum::http::StatusCode;
use serde_json::json;

use crate::{common::*, on_both_databases};

on_both_databases!(
    a_client_revokes_its_own_access_token,
    only_resource_servers_may_introspect
);

async fn a_client_revokes_its_own_access_token(db: Db) {
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let other = h.poll_client().await;
    let tool = h.resource_server().await;
    let jane = h.approver(APPROVER, None).await;
    let id = h.approved(&creds, &jane.id).await;
    let tokens = h.poll(&creds, &id).await;
    let access_token = tokens.json["access_token"].as_str().unwrap().to_owned();
    let form = [("token", access_token.as_str())];
    let introspect = || h.post("/introspect", Some(&tool), &form);
    assert_eq!(introspect().await.json["active"], true);

    let discovery = h.get("/.well-known/openid-configuration").await;
    assert!(discovery.json["revocation_endpoint"]
        .as_str()
        .unwrap()
        .ends_with("/revoke"));

    // §2.1: only the client the token was issued to may revoke it.
    h.post("/revoke", Some(&other), &[("token", &access_token)])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "unauthorized_client");
    assert_eq!(introspect().await.json["active"], true);
    // RFC 6749 §5.2 errors: no token, no valid client.
    h.post("/revoke", Some(&creds), &[])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    let stranger = Creds {
        id: creds.id.clone(),
        secret: "wrong".into(),
    };
    h.post("/revoke", Some(&stranger), &[("token", &access_token)])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");

    // §2.2: 200 with an empty body; then the token is inactive wherever it is checked.
    let revoked = h
        .post(
            "/revoke",
            Some(&creds),
            &[
                ("token", &access_token),
                ("token_type_hint", "access_token"),
            ],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(revoked.text, "");
    assert_eq!(revoked.headers["cache-control"], "no-store");
    assert_eq!(introspect().await.json, json!({ "active": false }));
    let (revoked_at,): (Option<i64>,) =
        sqlx::query_as("SELECT revoked_at FROM issued_tokens WHERE auth_req_id = $1")
            .bind(&id)
            .fetch_one(h.store.pool())
            .await
            .unwrap();
    assert!(revoked_at.is_some());
    // Again, or a token that is not one of ours: the same answer (§2.2).
    for token in [access_token.as_str(), "not-a-token"] {
        let again = h.post("/revoke", Some(&creds), &[("token", token)]).await;
        assert_eq!(again.status, StatusCode::OK, "{token}");
    }
}

async fn only_resource_servers_may_introspect(db: Db) {
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let id = h.approved(&creds, &jane.id).await;
    let tokens = h.poll(&creds, &id).await;
    let access_token = tokens.json["access_token"].as_str().unwrap();
    h.post("/introspect", Some(&creds), &[("token", access_token)])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "unauthorized_client");
    let tool = h.resource_server().await;
    let answer = h
        .post("/introspect", Some(&tool), &[("token", access_token)])
        .await;
    assert_eq!(answer.json["active"], true);
    assert_eq!(answer.json["client_id"], creds.id.as_str());
}
