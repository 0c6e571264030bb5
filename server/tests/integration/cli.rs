//! The command line: client and approver administration on the same database as `serve`, key rotation,
//! and the reference agent getting `authorization_pending`, then tokens, from a real server.
use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::Arc,
};

use axum::http::StatusCode;
use serde_json::Value;
use server::{
    ciba::Decision,
    clock::{Clock, SystemClock},
    store::Store,
};

use crate::{common::*, on_both_databases};

on_both_databases!(
    clients_and_approvers_are_managed_from_the_command_line,
    the_agent_gets_pending_then_tokens,
    the_agent_in_ping_mode_waits_for_the_ping
);

/// The entry of `client list --json` for `client_id`.
fn listed_client(database_url: &str, client_id: &Value) -> Value {
    let (_, out, _) = countersign(database_url, &["client", "list", "--json"]);
    let list: Value = serde_json::from_str(&out).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| &c["client_id"] == client_id)
        .cloned()
        .unwrap()
}

fn countersign(database_url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("COUNTERSIGN_KEY_FILE", test_key_file())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn clients_and_approvers_are_managed_from_the_command_line(db: Db) {
    let h = Harness::new(db).await;
    let url = h.url().to_owned();
    let (ok, out, err) = countersign(
        &url,
        &[
            "client",
            "create",
            "--name",
            "Billing bot",
            "--delivery",
            "poll",
            "--scope",
            "email",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let creds = Creds {
        id: created["client_id"].as_str().unwrap().into(),
        secret: created["client_secret"].as_str().unwrap().into(),
    };
    assert!(creds.secret.len() >= 43, "at least 256 bits");
    let row = h.store.client(&creds.id).await.unwrap().unwrap();
    assert_eq!(row.scopes, "openid email");
    let stored = row.secret_hash.unwrap();
    assert_ne!(stored, creds.secret, "only a hash is stored");
    assert!(stored.starts_with("hmac-sha256:"), "{stored}");
    assert_eq!(stored, client_secrets().stored(&creds.secret), "keyed");

    let (ok, _, err) = countersign(
        &url,
        &[
            "approver",
            "add",
            "--email",
            "Jane@Example.com",
            "--name",
            "Jane Doe",
        ],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = countersign(
        &url,
        &[
            "approver",
            "add",
            "--email",
            "jane@example.com",
            "--name",
            "Jane again",
        ],
    );
    assert!(!ok && err.contains("already exists"), "{err}");
    // An invitation's link is stored as a digest under the server's key, so making one needs it.
    let (ok, out, err) = countersign(&url, &["approver", "invite", "--email", "new@example.com"]);
    assert!(ok && out.contains("/enroll/"), "{err}");
    let token = out.trim().rsplit('/').next().unwrap();
    assert!(h.server.invitations.find(token).await.unwrap().is_some());
    let out = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(["approver", "invite", "--email", "other@example.com"])
        .env("DATABASE_URL", &url)
        .env("COUNTERSIGN_KEY_FILE", "/nonexistent/countersign.key")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("key file"), "{err}");
    // The operator's recovery (issue 22: when no second admin can approve one): Jane's passkey
    // ends, and the link (an hour, once) is recorded as a recovery, in the admin log too.
    let jane = h.store.approver_by_email(APPROVER).await.unwrap().unwrap();
    let jane_key = passkey_row(&test_credential(&jane.id), &jane.id, TEST_PASSKEY);
    register_passkey(&h, &jane_key, TEST_PASSKEY).await;
    let (ok, out, err) = countersign(&url, &["approver", "recover", "--email", APPROVER]);
    assert!(ok && out.contains("/enroll/"), "{err}");
    assert!(err.contains("works once, within an hour"), "{err}");
    let token = out.trim().rsplit('/').next().unwrap();
    let link = h.server.invitations.find(token).await.unwrap().unwrap();
    assert!(link.recovery_id.is_some());
    assert_eq!(link.expires_at - link.created_at, 3_600_000);
    assert!(h
        .store
        .passkey(&jane_key.credential_id)
        .await
        .unwrap()
        .is_none());
    let log = h.store.admin_log(1).await.unwrap();
    assert_eq!(
        (log[0].admin_id.as_str(), log[0].action.as_str()),
        ("operator", "recovered an approver")
    );
    let (ok, _, err) = countersign(
        &url,
        &["approver", "recover", "--email", "nobody@example.com"],
    );
    assert!(!ok && err.contains("no approver"), "{err}");
    // Nothing an earlier version left here: the explicit sealing step finds nothing to seal.
    let (ok, out, err) = countersign(&url, &["keys", "seal-legacy"]);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "sealed 0 signing keys, no VAPID key, 0 passkey keys into the key registry; keyed 0 client secrets"
    );
    let r = h.bc_authorize(&creds, APPROVER, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let (ok, out, _) = countersign(&url, &["client", "list", "--json"]);
    assert!(ok);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["name"], "Billing bot");
    assert!(
        !out.contains(&creds.secret),
        "the secret is never shown again"
    );

    let (ok, out, err) = countersign(&url, &["client", "rotate-secret", &creds.id, "--json"]);
    assert!(ok, "{err}");
    let rotated: Value = serde_json::from_str(&out).unwrap();
    let new_creds = Creds {
        id: creds.id.clone(),
        secret: rotated["client_secret"].as_str().unwrap().into(),
    };
    h.server.ciba.refresh().await.unwrap();
    h.bc_authorize(&creds, APPROVER, &[])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    assert_eq!(
        h.bc_authorize(&new_creds, APPROVER, &[]).await.status,
        StatusCode::OK
    );

    let (ok, _, err) = countersign(&url, &["client", "disable", &creds.id]);
    assert!(ok, "{err}");
    h.server.ciba.refresh().await.unwrap();
    h.bc_authorize(&new_creds, APPROVER, &[])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    let (ok, _, err) = countersign(&url, &["client", "disable", "nobody"]);
    assert!(!ok && err.contains("no client"), "{err}");

    let (ok, _, err) = countersign(
        &url,
        &["client", "create", "--name", "Pinger", "--delivery", "ping"],
    );
    assert!(!ok && err.contains("--notify-url"), "{err}");
    // A ping endpoint inside the network is refused at registration.
    let (ok, _, err) = countersign(
        &url,
        &[
            "client",
            "create",
            "--name",
            "Pinger",
            "--delivery",
            "ping",
            "--notify-url",
            "https://192.168.1.10/cb",
        ],
    );
    assert!(!ok && err.contains("not a public address"), "{err}");
    // A resource server (a tool), which may introspect.
    let (ok, out, err) = countersign(
        &url,
        &[
            "client",
            "create",
            "--name",
            "Payments API",
            "--delivery",
            "poll",
            "--resource-server",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let tool: Value = serde_json::from_str(&out).unwrap();
    let listed = listed_client(&url, &tool["client_id"]);
    assert_eq!(listed["resource_server"], true);
    assert_eq!(listed["dpop"], false);
    // An agent whose tokens must be DPoP-bound (RFC 9449 §5.2).
    let (ok, out, err) = countersign(
        &url,
        &[
            "client",
            "create",
            "--name",
            "Careful agent",
            "--delivery",
            "poll",
            "--dpop",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let careful: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed_client(&url, &careful["client_id"])["dpop"], true);

    let before = h.server.ciba.keys().active_kid();
    let (ok, _, err) = countersign(&url, &["keys", "rotate"]);
    assert!(ok, "{err}");
    h.server.ciba.refresh().await.unwrap();
    assert_ne!(
        h.server.ciba.keys().active_kid(),
        before,
        "the running server picks up the rotation"
    );

    // A checkpoint printed for storage elsewhere, then compared with: clean, and exit 0.
    let approver = h.store.approver_by_email(APPROVER).await.unwrap().unwrap();
    let agent = h.poll_client().await;
    h.approved(&agent, &approver.id).await;
    let (ok, checkpoint, err) = countersign(&url, &["audit", "checkpoint"]);
    assert!(ok, "{err}");
    assert_eq!(
        header_of(checkpoint.trim())["typ"],
        "countersign-checkpoint+jwt"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkpoint.jws");
    std::fs::write(&file, &checkpoint).unwrap();
    let file = file.to_str().unwrap();
    let (ok, out, err) = countersign(&url, &["audit", "verify", "--checkpoint", file]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("compared with the checkpoint made at"),
        "{out}"
    );
    assert!(
        out.ends_with("1 key registry entries, 0 problems\n"),
        "{out}"
    );
    // With the checkpoint directory holding none, the report says what it could not check.
    let empty = dir.path().join("none");
    let empty = empty.to_str().unwrap();
    let (ok, out, _) = countersign(&url, &["audit", "verify", "--checkpoint-dir", empty]);
    assert!(ok);
    assert!(out.contains("no checkpoint to compare with"), "{out}");
    // Without the key-encryption key the signing keys are taken as stored, and it says so.
    let missing = dir.path().join("missing.key");
    let (_, out, _) = countersign(
        &url,
        &["audit", "verify", "--key-file", missing.to_str().unwrap()],
    );
    assert!(out.contains("signing keys were taken as stored"), "{out}");
    assert!(!missing.exists(), "the audit never creates a key file");

    // Offboarding.
    let (ok, out, err) = countersign(&url, &["approver", "disable", APPROVER]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        format!("{APPROVER} is disabled; 2 pending requests will be answered access_denied\n"),
        "the two requests made above, still pending"
    );
    let (ok, _, err) = countersign(&url, &["approver", "disable", "nobody@example.com"]);
    assert!(!ok && err.contains("no approver"), "{err}");
}

/// A real server listening on loopback, for the reference agent; Jane is an approver.
struct Listening {
    test_db: TestDb,
    store: Store,
    ciba: Arc<server::ciba::Ciba>,
    issuer: String,
    jane_id: String,
}

async fn listening(db: Db, adjust: impl FnOnce(&mut server::config::ServeConfig)) -> Listening {
    let test_db = TestDb::new(db).await;
    let store = Store::connect(&test_db.url).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = test_config();
    config.public_url = format!("http://localhost:{}", addr.port()).parse().unwrap();
    adjust(&mut config);
    let server = server::build(&config, store.clone(), Arc::new(SystemClock))
        .await
        .unwrap();
    let ciba = server.ciba.clone();
    tokio::spawn(async move { axum::serve(listener, server.router).await.unwrap() });
    let (ok, _, err) = countersign(
        &test_db.url,
        &["approver", "add", "--email", APPROVER, "--name", "Jane"],
    );
    assert!(ok, "{err}");
    let jane_id = server::identity::approvers::by_email(&store, APPROVER)
        .await
        .unwrap()
        .unwrap()
        .id;
    Listening {
        test_db,
        store,
        ciba,
        issuer: config.public_url.to_string(),
        jane_id,
    }
}

/// Reads the agent's stderr until it says `needle`; returns all it said.
async fn until_said(agent: &mut Child, needle: &'static str) -> String {
    let mut stderr = BufReader::new(agent.stderr.take().unwrap());
    let said = tokio::task::spawn_blocking(move || {
        let mut said = String::new();
        while stderr.read_line(&mut said).unwrap() > 0 {
            if said.contains(needle) {
                break;
            }
        }
        said
    })
    .await
    .unwrap();
    assert!(said.contains(needle), "the agent said: {said}");
    said
}

/// Approves the one pending request and returns the tokens the agent printed.
async fn approve_and_collect(server: &Listening, agent: Child) -> Value {
    let pending = server
        .store
        .pending_auth_requests(SystemClock.now())
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    decide(
        &server.ciba,
        &pending[0].id,
        &server.jane_id,
        Decision::approve_with_passkey(false),
    )
    .await
    .unwrap();
    let output = tokio::task::spawn_blocking(move || agent.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn the_agent_gets_pending_then_tokens(db: Db) {
    // The reference agent (CIBA §7 then §10.1 polling at `interval`) against a real listening server.
    let server = listening(db, |c| c.poll_interval = 1).await;
    let (ok, out, err) = countersign(
        &server.test_db.url,
        &[
            "client",
            "create",
            "--name",
            "Agent",
            "--delivery",
            "poll",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let mut agent = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(["agent", "request", "--issuer", &server.issuer])
        .args(["--client-id", created["client_id"].as_str().unwrap()])
        .args([
            "--client-secret",
            created["client_secret"].as_str().unwrap(),
        ])
        .args(["--login-hint", APPROVER, "--action", "Delete"])
        .args(["--target", "staging database \"orders\""])
        .args([
            "--consequence",
            "All rows are lost.",
            "--binding-message",
            "DEL-42",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The agent polled and was told to wait.
    until_said(&mut agent, "authorization_pending").await;
    let pending = server
        .store
        .pending_auth_requests(SystemClock.now())
        .await
        .unwrap();
    assert_eq!(pending[0].binding_message.as_deref(), Some("DEL-42"));

    let tokens = approve_and_collect(&server, agent).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(
        tokens["authorization_details"][0]["target"],
        "staging database \"orders\""
    );
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["authorization_details"],
        tokens["authorization_details"]
    );
    server.store.close().await;
}

async fn the_agent_in_ping_mode_waits_for_the_ping(db: Db) {
    // The reference agent in ping mode (CIBA §10.2): it listens, is pinged, asks /token once.
    let server = listening(db, |c| c.allow_loopback_notify = true).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let notify_url = format!("http://127.0.0.1:{port}/ciba");
    let created = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args([
            "client",
            "create",
            "--name",
            "Pinged agent",
            "--delivery",
            "ping",
        ])
        .args(["--notify-url", &notify_url, "--json"])
        .env("DATABASE_URL", &server.test_db.url)
        .env("COUNTERSIGN_KEY_FILE", test_key_file())
        .env("COUNTERSIGN_ALLOW_LOOPBACK_NOTIFY", "1")
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    let mut agent = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(["agent", "request", "--issuer", &server.issuer])
        .args(["--client-id", created["client_id"].as_str().unwrap()])
        .args([
            "--client-secret",
            created["client_secret"].as_str().unwrap(),
        ])
        .args(["--login-hint", APPROVER, "--ping", &port])
        .args(["--action", "Scale down", "--target", "the web tier"])
        .args(["--consequence", "Capacity halves."])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let said = until_said(&mut agent, "waiting for the ping").await;
    assert!(
        !said.contains("authorization_pending"),
        "no polling: {said}"
    );
    let tokens = approve_and_collect(&server, agent).await;
    assert_eq!(tokens["token_type"], "Bearer");
    let (redeemed,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM issued_tokens")
        .fetch_one(server.store.pool())
        .await
        .unwrap();
    assert_eq!(redeemed, 1);
    server.store.close().await;
}
