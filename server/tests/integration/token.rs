//! `POST /token` with the CIBA grant (§10.1) and its errors (§11), decisions, tokens and redemption.
use std::sync::Arc;

use axum::http::{header, StatusCode};
use serde_json::{json, Value};
use server::ciba::{AuthMethod, Decision, DecisionError, DeliveryMode};

use crate::{common::*, on_both_databases};

on_both_databases!(
    polling_before_a_decision_is_pending_and_too_fast_is_slow_down,
    another_clients_id_is_invalid_grant_and_spoils_nothing,
    an_expired_request_is_expired_token,
    a_denied_request_is_access_denied,
    an_approved_request_yields_tokens_once_and_a_replay_revokes_them,
    a_hundred_concurrent_polls_yield_exactly_one_token_response,
    grant_type_and_delivery_mode_are_checked,
    decisions_are_recorded_once_by_the_addressed_approver,
    an_exact_tool_call_is_carried_into_the_tokens,
);

async fn an_exact_tool_call_is_carried_into_the_tokens(db: Db) {
    // RFC 9396 §2 and §7: agent_action's optional `tool` and `arguments` (what the MCP gate sends)
    // are kept exactly, so the token binds that one call.
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let approver = h.approver(APPROVER, None).await;
    let details = json!([{
        "type": "agent_action", "action": "Write the file /srv/a.txt", "target": "/srv/a.txt",
        "consequence": "Its contents are replaced.", "tool": "write_file",
        "arguments": {"path": "/srv/a.txt", "content": "hello\nworld", "mode": {"append": false}},
    }]);
    let id = h
        .approved_with(
            &creds,
            &approver.id,
            &[("authorization_details", &details.to_string())],
        )
        .await;
    let r = h.poll(&creds, &id).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["authorization_details"], details);
    let access_token = r.json["access_token"].as_str().unwrap();
    assert_eq!(claims(access_token)["authorization_details"], details);

    // Arguments without the tool they are for are refused (CIBA §13).
    let orphan = json!([{
        "type": "agent_action", "action": "a", "target": "t", "consequence": "c",
        "arguments": {"path": "/srv/a.txt"},
    }]);
    let r = h
        .bc_authorize(
            &creds,
            APPROVER,
            &[("authorization_details", &orphan.to_string())],
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_authorization_details");
    assert_eq!(r.description(), "agent_action.arguments need a tool");
}

async fn polling_before_a_decision_is_pending_and_too_fast_is_slow_down(db: Db) {
    // CIBA §11: authorization_pending; slow_down adds 5 seconds to the interval.
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    h.approver(APPROVER, None).await;
    let id = h.start(&creds, APPROVER).await;
    h.poll(&creds, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "authorization_pending");
    h.clock.advance_secs(1);
    let r = h.poll(&creds, &id).await;
    r.assert_error(StatusCode::BAD_REQUEST, "slow_down");
    assert_eq!(r.json["interval"], 10);
    h.clock.advance_secs(9);
    h.poll(&creds, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "slow_down");
    h.clock.advance_secs(15);
    h.poll(&creds, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "authorization_pending");
    assert_eq!(
        h.count_requests("status = 'pending'").await,
        1,
        "polling changes nothing durable"
    );
}

async fn another_clients_id_is_invalid_grant_and_spoils_nothing(db: Db) {
    // CIBA §11 invalid_grant: unknown ids and ids issued to another client.
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let intruder = h.poll_client().await;
    h.approver(APPROVER, None).await;
    let id = h.start(&creds, APPROVER).await;
    h.poll(&creds, "no-such-request")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    h.poll(&intruder, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    h.poll(&intruder, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    // The rightful client's first poll is not counted as too fast because of the intruder.
    h.poll(&creds, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "authorization_pending");
}

async fn an_expired_request_is_expired_token(db: Db) {
    // CIBA §11 expired_token; the expiry check precedes the pending/slow_down answer.
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let approver = h.approver(APPROVER, None).await;
    let r = h
        .bc_authorize(&creds, APPROVER, &[("requested_expiry", "30")])
        .await;
    let id = r.json["auth_req_id"].as_str().unwrap().to_owned();
    h.clock.advance_secs(30);
    h.poll(&creds, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "expired_token");
    h.poll(&creds, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "expired_token");
    let late = decide(
        &h.server.ciba,
        &id,
        &approver.id,
        Decision::approve_with_passkey(false),
    )
    .await;
    assert!(matches!(late, Err(DecisionError::Expired)), "{late:?}");
    // After the poll cache forgets it, the answer comes from the store and is the same.
    h.server.ciba.refresh().await.unwrap();
    h.poll(&creds, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "expired_token");
}

async fn a_denied_request_is_access_denied(db: Db) {
    // CIBA §11 access_denied at the token endpoint: HTTP 400 as for every token error but
    // invalid_client (RFC 6749 §5.2); the 403 of CIBA §13 belongs to /bc-authorize only.
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let approver = h.approver(APPROVER, None).await;
    let id = h.start(&creds, APPROVER).await;
    h.poll(&creds, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "authorization_pending");
    decide(
        &h.server.ciba,
        &id,
        &approver.id,
        Decision::Deny {
            reason: Some("not this order".into()),
        },
    )
    .await
    .unwrap();
    h.poll(&creds, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "access_denied");
    h.clock.advance_secs(1);
    h.poll(&creds, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "access_denied");
    assert_eq!(
        h.count_requests("status = 'denied' AND deny_reason = 'not this order'")
            .await,
        1
    );
}

async fn an_approved_request_yields_tokens_once_and_a_replay_revokes_them(db: Db) {
    // CIBA §10.1.1 token response; RFC 9068 access token; RFC 9396 §7 authorization_details;
    // RFC 6749 §4.1.2 / §10.5: a grant used twice is refused and its tokens revoked.
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let approver = h.approver(APPROVER, None).await;
    let id = h.approved(&creds, &approver.id).await;
    let r = h.poll(&creds, &id).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(r.json["token_type"], "Bearer");
    assert_eq!(r.json["expires_in"], 300);
    assert!(r.json.get("refresh_token").is_none());
    assert_eq!(r.json["authorization_details"], action_value());

    let id_token = r.json["id_token"].as_str().unwrap();
    let verified = h
        .server
        .ciba
        .keys()
        .verify(id_token, "JWT")
        .expect("ID token verifies against the JWKS key");
    let c = Value::Object(verified);
    assert_eq!(header_of(id_token)["alg"], "ES256");
    assert_eq!(c["iss"], "http://localhost:3000");
    assert_eq!(c["sub"], approver.id.as_str());
    assert_eq!(c["aud"], creds.id.as_str());
    assert_eq!(c["urn:openid:params:jwt:claim:auth_req_id"], id.as_str());
    assert_eq!(c["acr"], "phr");
    assert_eq!(c["amr"], json!(["hwk", "user"]));
    assert_eq!(c["email"], APPROVER, "the email scope was granted");
    let iat = c["iat"].as_i64().unwrap();
    assert_eq!(c["exp"].as_i64().unwrap() - iat, 300);
    assert!(c["auth_time"].as_i64().unwrap() <= iat);

    let access_token = r.json["access_token"].as_str().unwrap();
    assert_eq!(header_of(access_token)["typ"], "at+jwt");
    let at = claims(access_token);
    assert_eq!(
        at["authorization_details"],
        action_value(),
        "exactly what the approver approved"
    );
    assert_eq!(at["client_id"], creds.id.as_str());
    assert_eq!(at["sub"], approver.id.as_str());
    assert_eq!(at["scope"], "openid email");

    let tool = h.resource_server().await;
    let introspect = |token: String| {
        let tool = tool.clone();
        let h = &h;
        async move {
            h.post("/introspect", Some(&tool), &[("token", &token)])
                .await
                .json
        }
    };
    let before = introspect(access_token.to_owned()).await;
    assert_eq!(before["active"], true);
    assert_eq!(before["authorization_details"], action_value());

    h.clock.advance_secs(6);
    h.poll(&creds, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(
        introspect(access_token.to_owned()).await,
        json!({"active": false}),
        "the replay revoked the tokens"
    );
    assert_eq!(h.count_requests("status = 'redeemed'").await, 1);
    let (revoked,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM issued_tokens WHERE revoked_at IS NOT NULL")
            .fetch_one(h.store.pool())
            .await
            .unwrap();
    assert_eq!(revoked, 1, "the first redemption's access token is revoked");
}

async fn a_hundred_concurrent_polls_yield_exactly_one_token_response(db: Db) {
    // CIBA §10.1: tokens are issued once per auth_req_id, however many polls race.
    let h = Arc::new(Harness::new(db).await);
    let creds = h.poll_client().await;
    let approver = h.approver(APPROVER, None).await;
    let id = h.approved(&creds, &approver.id).await;
    let polls = (0..100).map(|_| {
        let (h, creds, id) = (h.clone(), creds.clone(), id.clone());
        tokio::spawn(async move { h.poll(&creds, &id).await })
    });
    let responses = futures::future::join_all(polls).await;
    let statuses: Vec<_> = responses.into_iter().map(|r| r.unwrap()).collect();
    let ok = statuses
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!(ok, 1, "exactly one token response");
    for r in statuses.iter().filter(|r| r.status != StatusCode::OK) {
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    assert_eq!(h.count_requests("status = 'redeemed'").await, 1);
}

async fn grant_type_and_delivery_mode_are_checked(db: Db) {
    // RFC 6749 §5.2 unsupported_grant_type; CIBA §10.1: push clients may not poll (unauthorized_client).
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    h.approver(APPROVER, None).await;
    let id = h.start(&creds, APPROVER).await;
    h.post("/token", Some(&creds), &[("auth_req_id", &id)])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    h.post(
        "/token",
        Some(&creds),
        &[("grant_type", "authorization_code"), ("auth_req_id", &id)],
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    h.post(
        "/token",
        Some(&creds),
        &[("grant_type", "urn:openid:params:grant-type:ciba")],
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    h.post(
        "/token",
        None,
        &[
            ("grant_type", "urn:openid:params:grant-type:ciba"),
            ("auth_req_id", &id),
        ],
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    let push = h
        .client(DeliveryMode::Push, AuthMethod::ClientSecretBasic)
        .await;
    h.poll(&push, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "unauthorized_client");
}

async fn decisions_are_recorded_once_by_the_addressed_approver(db: Db) {
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let bob = h.approver("bob@example.com", None).await;
    let id = h.start(&creds, APPROVER).await;
    let ciba = &h.server.ciba;
    assert!(matches!(
        decide(ciba, &id, &bob.id, Decision::approve_with_passkey(false)).await,
        Err(DecisionError::NotYours)
    ));
    assert!(matches!(
        decide(
            ciba,
            "nope",
            &jane.id,
            Decision::approve_with_passkey(false)
        )
        .await,
        Err(DecisionError::NotFound)
    ));
    let (a, b) = tokio::join!(
        decide(ciba, &id, &jane.id, Decision::approve_with_passkey(false)),
        decide(ciba, &id, &jane.id, Decision::Deny { reason: None }),
    );
    assert!(
        a.is_ok() != b.is_ok(),
        "exactly one of two racing decisions wins: {a:?} {b:?}"
    );
    assert!(matches!(
        a.err().or(b.err()),
        Some(DecisionError::AlreadyDecided)
    ));
    assert_eq!(
        h.count_requests("status IN ('approved', 'denied') AND decided_at IS NOT NULL")
            .await,
        1
    );
}

/// Several instances on one PostgreSQL database: a decision recorded by one instance reaches the poll
/// cache of another through LISTEN/NOTIFY, so the agent polling there gets its tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_on_one_instance_reaches_polls_on_another_postgres() {
    let h = Harness::new(Db::Postgres).await;
    let creds = h.poll_client().await;
    let approver = h.approver(APPROVER, None).await;
    server::spawn_decision_listener(h.server.ciba.clone(), h.url().to_owned());
    let other_store = server::store::Store::connect(h.url()).await.unwrap();
    let other = server::build(&test_config(), other_store, h.clock.clone())
        .await
        .unwrap();

    let id = h.start(&creds, APPROVER).await;
    h.poll(&creds, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "authorization_pending");
    decide(
        &other.ciba,
        &id,
        &approver.id,
        Decision::approve_with_passkey(false),
    )
    .await
    .unwrap();
    // The notification is asynchronous: allow it up to five seconds, in small steps.
    for _ in 0..50 {
        h.clock.advance_secs(5);
        let r = h.poll(&creds, &id).await;
        if r.status == StatusCode::OK {
            assert_eq!(r.json["authorization_details"], action_value());
            return;
        }
        r.assert_error(StatusCode::BAD_REQUEST, "authorization_pending");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the decision never reached the other instance");
}
