//! Ping and push delivery (CIBA §10.2, §10.3): on approval, denial and expiry the client's
//! notification endpoint gets, with `Authorization: Bearer <client_notification_token>`,
//! `{"auth_req_id": …}` (ping) or the token response or error (push); at least once, tried again after
//! a failure, and never sent to a loopback or private address unless allowed for development.
use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    http::{HeaderMap, StatusCode},
    routing::post,
    Router,
};
use serde_json::Value;
use server::ciba::{
    clients::{self, endpoint::EndpointPolicy, ClientError},
    AuthMethod, Decision, DeliveryMode,
};
use server::clock::Clock;
use tokio::sync::mpsc;

use crate::{common::*, on_both_databases};

on_both_databases!(
    ping_clients_are_told_of_approval_denial_and_expiry,
    a_failed_ping_is_tried_again_later,
    ping_endpoints_on_private_addresses_are_refused,
    two_instances_deliver_each_ping_once,
    a_ping_survives_a_killed_server,
    push_clients_receive_the_token_response_or_the_error,
    a_failed_push_is_sent_again_with_new_tokens,
    pushed_tokens_are_bound_to_the_key_named_at_bc_authorize
);

/// What the client's endpoint received: the Authorization header, the content type and the body.
#[derive(Debug)]
struct Ping {
    authorization: String,
    content_type: String,
    body: Value,
}

/// A client's notification endpoint on loopback, answering with `answers` in turn (then 204).
async fn receiver(answers: Vec<StatusCode>) -> (String, mpsc::UnboundedReceiver<Ping>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}/cb",
        listener.local_addr().unwrap().port()
    );
    (url, receiver_on(listener, answers))
}

/// The endpoint of [`receiver`], on a listener the caller chose.
fn receiver_on(
    listener: tokio::net::TcpListener,
    answers: Vec<StatusCode>,
) -> mpsc::UnboundedReceiver<Ping> {
    let (tx, rx) = mpsc::unbounded_channel();
    let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
    let app = Router::new().route(
        "/cb",
        post(move |headers: HeaderMap, body: String| {
            let tx = tx.clone();
            let answers = answers.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let _ = tx.send(Ping {
                    authorization: header("authorization"),
                    content_type: header("content-type"),
                    body: serde_json::from_str(&body).unwrap_or(Value::Null),
                });
                answers
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or(StatusCode::NO_CONTENT)
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    rx
}

async fn ping_client(h: &Harness, url: &str) -> Creds {
    notified_client(h, url, DeliveryMode::Ping).await
}

async fn notified_client(h: &Harness, url: &str, delivery_mode: DeliveryMode) -> Creds {
    let new = clients::NewClient {
        name: "Async agent".into(),
        delivery_mode,
        notify_url: Some(url.into()),
        scopes: vec!["email".into()],
        auth_method: AuthMethod::ClientSecretBasic,
        jwks: None,
        resource_server: false,
        dpop_bound: false,
    };
    let dev = EndpointPolicy {
        allow_loopback: true,
    };
    let creds = clients::register(&h.store, &client_secrets(), new, dev, h.clock.now())
        .await
        .unwrap();
    h.server.ciba.refresh().await.unwrap();
    Creds {
        id: creds.client_id,
        secret: creds.client_secret.unwrap(),
    }
}

async fn ask(h: &Harness, creds: &Creds, token: &str) -> String {
    let r = h
        .bc_authorize(creds, APPROVER, &[("client_notification_token", token)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    r.json["auth_req_id"].as_str().unwrap().to_owned()
}

async fn next(pings: &mut mpsc::UnboundedReceiver<Ping>) -> Ping {
    tokio::time::timeout(Duration::from_secs(5), pings.recv())
        .await
        .expect("a ping within 5 s")
        .unwrap()
}

async fn none_within(pings: &mut mpsc::UnboundedReceiver<Ping>, ms: u64) {
    if let Ok(Some(ping)) = tokio::time::timeout(Duration::from_millis(ms), pings.recv()).await {
        panic!("unexpected ping {ping:?}");
    }
}

/// CIBA §10.2: exactly `{"auth_req_id": …}`, as JSON, with the client's bearer token.
fn assert_ping(ping: &Ping, token: &str, id: &str) {
    assert_eq!(ping.authorization, format!("Bearer {token}"));
    assert_eq!(ping.content_type, "application/json");
    assert_eq!(ping.body, serde_json::json!({ "auth_req_id": id }));
}

async fn delivered(h: &Harness) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM notification_outbox WHERE channel = 'client' AND done_at IS NOT NULL",
    )
    .fetch_one(h.store.pool())
    .await
    .unwrap()
}

async fn ping_clients_are_told_of_approval_denial_and_expiry(db: Db) {
    let h = Harness::with_config(db, |c| c.allow_loopback_notify = true).await;
    let jane = h.approver(APPROVER, None).await;
    let (url, mut pings) = receiver(vec![]).await;
    let creds = ping_client(&h, &url).await;

    let approved = ask(&h, &creds, "tok-approved").await;
    let denied = ask(&h, &creds, "tok-denied").await;
    let expiring = ask(&h, &creds, "tok-expiring").await;
    none_within(&mut pings, 300).await;

    h.approve(&approved, &jane.id).await;
    assert_ping(&next(&mut pings).await, "tok-approved", &approved);
    let tokens = h.poll(&creds, &approved).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.json);

    decide(
        &h.server.ciba,
        &denied,
        &jane.id,
        Decision::Deny { reason: None },
    )
    .await
    .unwrap();
    assert_ping(&next(&mut pings).await, "tok-denied", &denied);
    h.poll(&creds, &denied)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "access_denied");

    h.clock.advance_secs(301);
    assert_ping(&next(&mut pings).await, "tok-expiring", &expiring);
    h.poll(&creds, &expiring)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "expired_token");

    none_within(&mut pings, 1_500).await;
    assert_eq!(delivered(&h).await, 3, "each once");
}

async fn a_failed_ping_is_tried_again_later(db: Db) {
    let h = Harness::with_config(db, |c| c.allow_loopback_notify = true).await;
    let jane = h.approver(APPROVER, None).await;
    let (url, mut pings) = receiver(vec![StatusCode::SERVICE_UNAVAILABLE]).await;
    let creds = ping_client(&h, &url).await;
    let id = ask(&h, &creds, "tok").await;
    h.approve(&id, &jane.id).await;
    assert_ping(&next(&mut pings).await, "tok", &id);
    // Backing off: not again at once.
    none_within(&mut pings, 1_500).await;
    assert_eq!(delivered(&h).await, 0);
    h.clock.advance_secs(2);
    assert_ping(&next(&mut pings).await, "tok", &id);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(delivered(&h).await, 1);
    let (attempts,): (i64,) =
        sqlx::query_as("SELECT attempts FROM notification_outbox WHERE channel = 'client'")
            .fetch_one(h.store.pool())
            .await
            .unwrap();
    assert_eq!(attempts, 2);
}

async fn ping_endpoints_on_private_addresses_are_refused(db: Db) {
    let h = Harness::new(db).await;
    let jane = h.approver(APPROVER, None).await;
    let secrets = client_secrets();
    let register = |url: &str| {
        let new = clients::NewClient {
            name: "Agent".into(),
            delivery_mode: DeliveryMode::Ping,
            notify_url: Some(url.into()),
            scopes: vec![],
            auth_method: AuthMethod::ClientSecretBasic,
            jwks: None,
            resource_server: false,
            dpop_bound: false,
        };
        clients::register(
            &h.store,
            &secrets,
            new,
            EndpointPolicy::default(),
            h.clock.now(),
        )
    };
    for (url, why) in [
        ("http://127.0.0.1:9/cb", "must use https"),
        (
            "https://10.0.0.1/cb",
            "10.0.0.1, which is not a public address",
        ),
        ("https://169.254.169.254/latest", "not a public address"),
        ("https://localhost/cb", "which is not a public address"),
    ] {
        match register(url).await {
            Err(ClientError::Invalid(message)) => {
                assert!(message.contains(why), "{url}: {message}");
            }
            other => panic!("{url}: {other:?}"),
        }
    }

    // A client whose endpoint was changed in the database to point inside: a server that does not
    // allow loopback never connects to it, by address or by name.
    let (url, mut pings) = receiver(vec![]).await;
    let port = url
        .split(':')
        .nth(2)
        .unwrap()
        .trim_end_matches("/cb")
        .to_owned();
    for (inside, why) in [
        (
            format!("https://127.0.0.1:{port}/cb"),
            "127.0.0.1 is not a public address",
        ),
        (
            format!("https://localhost:{port}/cb"),
            "localhost resolves to no public address",
        ),
    ] {
        let creds = h
            .client(DeliveryMode::Ping, AuthMethod::ClientSecretBasic)
            .await;
        sqlx::query("UPDATE clients SET notify_url = $1 WHERE id = $2")
            .bind(&inside)
            .bind(&creds.id)
            .execute(h.store.pool())
            .await
            .unwrap();
        h.server.ciba.refresh().await.unwrap();
        let id = ask(&h, &creds, "tok").await;
        h.approve(&id, &jane.id).await;
        none_within(&mut pings, 1_500).await;
        let (attempts, done, error): (i64, Option<i64>, Option<String>) = sqlx::query_as(
            "SELECT attempts, done_at, last_error FROM notification_outbox \
             WHERE channel = 'client' AND auth_req_id = $1",
        )
        .bind(&id)
        .fetch_one(h.store.pool())
        .await
        .unwrap();
        assert!(
            attempts >= 1 && done.is_none(),
            "{inside}: tried, not delivered"
        );
        let error = error.unwrap_or_default();
        assert!(error.contains(why), "{inside}: {error}");
    }
}

/// Two instances on one database each run a delivery worker: every ping is sent once.
async fn two_instances_deliver_each_ping_once(db: Db) {
    let h = Harness::with_config(db, |c| c.allow_loopback_notify = true).await;
    let mut config = test_config();
    config.allow_loopback_notify = true;
    let _second = server::build(&config, h.store.clone(), h.clock.clone())
        .await
        .unwrap();
    let jane = h.approver(APPROVER, None).await;
    let (url, mut pings) = receiver(vec![]).await;
    let creds = ping_client(&h, &url).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = ask(&h, &creds, &format!("tok-{i}")).await;
        h.approve(&id, &jane.id).await;
        ids.push(id);
    }
    let mut seen = Vec::new();
    for _ in 0..5 {
        let ping = next(&mut pings).await;
        seen.push(ping.body["auth_req_id"].as_str().unwrap().to_owned());
    }
    none_within(&mut pings, 2_500).await;
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids, "each request pinged exactly once");
}

/// The decision is recorded while no server runs (as if it crashed right after committing); a server
/// is started, fails to reach the endpoint, and is killed with SIGKILL; the next server delivers the
/// ping, once.
async fn a_ping_survives_a_killed_server(db: Db) {
    use std::process::{Command, Stdio};
    let test_db = TestDb::new(db).await;
    let store = server::store::Store::connect(&test_db.url).await.unwrap();
    let clock: Arc<dyn Clock> = Arc::new(server::clock::SystemClock);
    // A domain without any delivery worker: only the outbox row will remember the ping.
    let kek = Arc::new(test_kek());
    let keys = Arc::new(
        server::signing::KeyRing::load(store.clone(), kek, 300_000, clock.now())
            .await
            .unwrap(),
    );
    let registry = Arc::new(server::identity::registry::KeyRegistry::new(
        store.clone(),
        keys.clone(),
    ));
    let ciba = server::ciba::Ciba::new(
        store.clone(),
        clock.clone(),
        test_config().policy(),
        "http://localhost:3000".into(),
        keys,
        registry,
    )
    .await
    .unwrap();
    let jane = server::identity::approvers::add(
        &store,
        server::identity::approvers::NewApprover {
            email: APPROVER.into(),
            name: "Jane Doe".into(),
            role: server::identity::approvers::Role::Approver,
            user_code: None,
        },
        clock.now(),
    )
    .await
    .unwrap();
    // The endpoint's port, reserved and closed: nothing listens there yet.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let new = clients::NewClient {
        name: "Async agent".into(),
        delivery_mode: DeliveryMode::Ping,
        notify_url: Some(format!("http://127.0.0.1:{port}/cb")),
        scopes: vec![],
        auth_method: AuthMethod::ClientSecretBasic,
        jwks: None,
        resource_server: false,
        dpop_bound: false,
    };
    let creds = clients::register(
        &store,
        &client_secrets(),
        new,
        EndpointPolicy {
            allow_loopback: true,
        },
        clock.now(),
    )
    .await
    .unwrap();
    let id = ciba
        .start_request(
            &ciba.clients().get(&creds.client_id).await.unwrap().unwrap(),
            ping_params("tok-survivor"),
        )
        .await
        .unwrap()
        .auth_req_id;
    decide(&ciba, &id, &jane.id, Decision::approve_with_passkey(false))
        .await
        .unwrap();

    let checkpoints = tempfile::tempdir().unwrap();
    let serve = || {
        Command::new(env!("CARGO_BIN_EXE_countersign"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env("DATABASE_URL", &test_db.url)
            .env("COUNTERSIGN_KEY_FILE", test_key_file())
            // Not the default (./data with PostgreSQL): the source tree.
            .env("COUNTERSIGN_CHECKPOINT_DIR", checkpoints.path())
            .env("COUNTERSIGN_ALLOW_LOOPBACK_NOTIFY", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = serve();
    // It tries (the endpoint is down), records the failure and backs off...
    let tried = async {
        loop {
            let (failed,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM notification_outbox WHERE channel = 'client' \
                 AND auth_req_id = $1 AND last_error IS NOT NULL",
            )
            .bind(&id)
            .fetch_one(store.pool())
            .await
            .unwrap();
            if failed == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), tried)
        .await
        .expect("the first server tried");
    // ...and dies without a chance to clean up.
    first.kill().unwrap();
    first.wait().unwrap();

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let mut pings = receiver_on(listener, vec![]);
    let mut second = serve();
    // Usually within the back-off (a second or two). Should the first server have claimed its next
    // try just before it died, its lease (30 s) must run out first: the bound allows for that.
    let ping = tokio::time::timeout(Duration::from_secs(45), pings.recv())
        .await
        .expect("the next server delivered")
        .unwrap();
    assert_ping(&ping, "tok-survivor", &id);
    none_within(&mut pings, 1_500).await;
    second.kill().unwrap();
    second.wait().unwrap();
}

fn ping_params(token: &str) -> server::ciba::BackchannelParams {
    server::ciba::BackchannelParams {
        scope: Some("openid".into()),
        login_hint: Some(APPROVER.into()),
        client_notification_token: Some(token.into()),
        authorization_details: Some(server::ciba::RawDetails::Text(action_details())),
        ..Default::default()
    }
}

async fn push_clients_receive_the_token_response_or_the_error(db: Db) {
    let h = Harness::with_config(db, |c| c.allow_loopback_notify = true).await;
    let jane = h.approver(APPROVER, None).await;
    let (url, mut pushes) = receiver(vec![]).await;
    let creds = notified_client(&h, &url, DeliveryMode::Push).await;
    let tool = h.resource_server().await;

    let approved = ask(&h, &creds, "tok-a").await;
    h.approve(&approved, &jane.id).await;
    let push = next(&mut pushes).await;
    assert_eq!(push.authorization, "Bearer tok-a");
    assert_eq!(push.content_type, "application/json");
    // §10.3.1: the token response with the auth_req_id; the ID token names it and hashes the access token.
    let body = &push.body;
    assert_eq!(body["auth_req_id"], approved.as_str());
    assert_eq!(body["token_type"], "Bearer");
    let access_token = body["access_token"].as_str().unwrap();
    h.server.ciba.keys().verify(access_token, "at+jwt").unwrap();
    let id_token = claims(body["id_token"].as_str().unwrap());
    assert_eq!(
        id_token["urn:openid:params:jwt:claim:auth_req_id"],
        approved.as_str()
    );
    assert!(id_token["at_hash"].is_string());
    let live = h
        .post("/introspect", Some(&tool), &[("token", access_token)])
        .await;
    assert_eq!(live.json["active"], true);
    // The delivery was the redemption: the token endpoint is not the push client's to use.
    h.poll(&creds, &approved)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "unauthorized_client");
    assert_eq!(h.count_requests("status = 'redeemed'").await, 1);

    let denied = ask(&h, &creds, "tok-d").await;
    decide(
        &h.server.ciba,
        &denied,
        &jane.id,
        Decision::Deny { reason: None },
    )
    .await
    .unwrap();
    let push = next(&mut pushes).await;
    assert_eq!(push.body["auth_req_id"], denied.as_str());
    assert_eq!(push.body["error"], "access_denied");

    let expiring = ask(&h, &creds, "tok-e").await;
    h.clock.advance_secs(301);
    let push = next(&mut pushes).await;
    assert_eq!(push.authorization, "Bearer tok-e");
    assert_eq!(push.body["auth_req_id"], expiring.as_str());
    assert_eq!(push.body["error"], "expired_token");
    none_within(&mut pushes, 1_500).await;
}

async fn a_failed_push_is_sent_again_with_new_tokens(db: Db) {
    let h = Harness::with_config(db, |c| c.allow_loopback_notify = true).await;
    let jane = h.approver(APPROVER, None).await;
    let (url, mut pushes) = receiver(vec![StatusCode::BAD_GATEWAY]).await;
    let creds = notified_client(&h, &url, DeliveryMode::Push).await;
    let tool = h.resource_server().await;
    let id = ask(&h, &creds, "tok").await;
    h.approve(&id, &jane.id).await;
    let lost = next(&mut pushes).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    none_within(&mut pushes, 1_500).await;
    h.clock.advance_secs(2);
    let delivered = next(&mut pushes).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(lost, delivered);
    let active = |token: String| {
        let h = &h;
        let tool = tool.clone();
        async move {
            h.post("/introspect", Some(&tool), &[("token", &token)])
                .await
                .json["active"]
                .clone()
        }
    };
    assert_eq!(
        active(lost).await,
        false,
        "what the failed delivery carried is revoked"
    );
    assert_eq!(active(delivered).await, true);
    let (issued, live): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(*) - COUNT(revoked_at) FROM issued_tokens WHERE auth_req_id = $1",
    )
    .bind(&id)
    .fetch_one(h.store.pool())
    .await
    .unwrap();
    assert_eq!((issued, live), (2, 1));
}

/// RFC 9449 §10's `dpop_jkt`, applied to CIBA push: the delivered tokens are DPoP-bound to the key
/// the client named when it asked.
async fn pushed_tokens_are_bound_to_the_key_named_at_bc_authorize(db: Db) {
    let h = Harness::with_config(db, |c| c.allow_loopback_notify = true).await;
    let jane = h.approver(APPROVER, None).await;
    let (url, mut pushes) = receiver(vec![]).await;
    let creds = notified_client(&h, &url, DeliveryMode::Push).await;
    let key = crate::dpop::DpopKey::new();
    let id = h
        .approved_with(
            &creds,
            &jane.id,
            &[("client_notification_token", "tok"), ("dpop_jkt", &key.jkt)],
        )
        .await;
    let push = next(&mut pushes).await;
    assert_eq!(push.body["auth_req_id"], id.as_str());
    assert_eq!(push.body["token_type"], "DPoP");
    let access_token = claims(push.body["access_token"].as_str().unwrap());
    assert_eq!(access_token["cnf"]["jkt"], key.jkt.as_str());
}
