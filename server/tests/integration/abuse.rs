//! Abuse paths closed, each attacked as it was found (issue: hostile input and abuse): user codes
//! guessed without limit, client changes missed by instances when the writer's clock is behind, and
//! live inbox streams that outlived their session and had no limit per person, and signed-out calls
//! that wrote a session row each (now they write nothing).
use axum::http::StatusCode;
use server::{
    ciba::request::{USER_CODE_LOCK_MS, USER_CODE_TRIES},
    clock::Clock,
};

use crate::{common::*, on_both_databases};

on_both_databases!(
    user_codes_cannot_be_guessed_without_limit,
    a_client_disabled_from_a_machine_whose_clock_is_behind_is_disabled_everywhere,
    the_live_inbox_ends_with_the_session_and_is_bounded_per_person,
    signed_out_calls_are_limited_per_address
);

async fn user_codes_cannot_be_guessed_without_limit(db: Db) {
    // CIBA §7.1 user_code, §13 invalid_user_code.
    let h = Harness::new(db).await;
    let guesser = h.poll_client().await;
    let honest = h.poll_client().await;
    h.approver(APPROVER, Some("482916")).await;
    let with_code = |code: &'static str| [("user_code", code)];
    for guess in 0..USER_CODE_TRIES {
        let wrong = if guess % 2 == 0 { "000000" } else { "111111" };
        h.bc_authorize(&guesser, APPROVER, &with_code(wrong))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_user_code");
    }
    // Locked: even the right code is refused, so a guess that lands teaches nothing.
    let locked = h
        .bc_authorize(&guesser, APPROVER, &with_code("482916"))
        .await;
    locked.assert_error(StatusCode::BAD_REQUEST, "invalid_user_code");
    assert!(
        locked.description().contains("too many wrong user codes"),
        "{}",
        locked.description()
    );
    // Another client is not locked out by the guesser.
    assert_eq!(
        h.bc_authorize(&honest, APPROVER, &with_code("482916"))
            .await
            .status,
        StatusCode::OK
    );
    // Tries during the lock do not extend it; it ends 15 minutes after the last wrong code.
    h.clock.advance_secs(USER_CODE_LOCK_MS / 1000 - 60);
    h.bc_authorize(&guesser, APPROVER, &with_code("000000"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_user_code");
    h.clock.advance_secs(61);
    assert_eq!(
        h.bc_authorize(&guesser, APPROVER, &with_code("482916"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(h.count_requests("1 = 1").await, 2);
    // Codes too short to hold against guessing are refused when set.
    let short = server::identity::approvers::add(
        &h.store,
        server::identity::approvers::NewApprover {
            email: "ann@example.com".into(),
            name: "Ann".into(),
            role: server::identity::approvers::Role::Approver,
            user_code: Some("4711".into()),
        },
        h.clock.now(),
    )
    .await;
    assert!(short.is_err());
}

async fn a_client_disabled_from_a_machine_whose_clock_is_behind_is_disabled_everywhere(db: Db) {
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    h.approver(APPROVER, None).await;
    h.server.ciba.refresh().await.unwrap();
    assert_eq!(
        h.bc_authorize(&creds, APPROVER, &[]).await.status,
        StatusCode::OK
    );
    // The command line ran on a machine whose clock is an hour behind the servers'.
    let behind = h.clock.now() - 3_600_000;
    assert!(h
        .store
        .set_client_disabled(&creds.id, true, behind)
        .await
        .unwrap());
    h.server.ciba.refresh().await.unwrap();
    h.bc_authorize(&creds, APPROVER, &[])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
}

/// A session row as signing in leaves it, for `approver_id` at their current epoch; its cookie.
async fn signed_in_cookie(h: &Harness, approver_id: &str) -> String {
    signed_in_session(h, approver_id).await
}

/// Opens the live inbox stream with `cookie`: its status, and its body once it is 200.
async fn open_stream(
    h: &Harness,
    cookie: &str,
) -> (StatusCode, Option<axum::body::BodyDataStream>) {
    use tower::ServiceExt;
    let request = axum::http::Request::get("/events/inbox")
        .header("cookie", cookie)
        .body(axum::body::Body::empty())
        .unwrap();
    let response = h.server.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    (
        status,
        (status == StatusCode::OK).then(|| response.into_body().into_data_stream()),
    )
}

/// The next event's data, or None once the stream has ended.
async fn next_event(body: &mut axum::body::BodyDataStream) -> Option<String> {
    use futures::StreamExt;
    loop {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), body.next())
            .await
            .expect("the stream answers within 10 s")?
            .unwrap();
        let text = String::from_utf8_lossy(&chunk).into_owned();
        if let Some(data) = text.lines().find_map(|l| l.strip_prefix("data: ")) {
            return Some(data.to_owned());
        }
    }
}

async fn the_live_inbox_ends_with_the_session_and_is_bounded_per_person(db: Db) {
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    if h.store.backend() == server::store::Backend::Postgres {
        // On PostgreSQL new requests reach open inboxes by NOTIFY, as between instances.
        let mut changes = h.server.ciba.inbox_changes();
        server::spawn_decision_listener(h.server.ciba.clone(), h.url().to_owned());
        // The listener says "every inbox" once it is listening.
        while changes.recv().await.unwrap() != server::ciba::EVERY_INBOX {}
    }
    let cookie = signed_in_cookie(&h, &jane.id).await;
    let (status, body) = open_stream(&h, &cookie).await;
    assert_eq!(status, StatusCode::OK);
    let mut body = body.unwrap();
    assert_eq!(next_event(&mut body).await.as_deref(), Some("subscribed"));
    h.start(&creds, APPROVER).await;
    assert_eq!(next_event(&mut body).await.as_deref(), Some("changed"));

    // Signed out everywhere (from another device, say): the open stream says nothing more and ends.
    h.server.accounts.end_every_session(&jane.id).await.unwrap();
    h.start(&creds, APPROVER).await;
    assert_eq!(next_event(&mut body).await, None);
    assert_eq!(open_stream(&h, &cookie).await.0, StatusCode::UNAUTHORIZED);

    // A person may keep a few streams open, not a flood of them.
    let cookie = signed_in_cookie(&h, &jane.id).await;
    let mut open = Vec::new();
    for _ in 0..server::ui::events::MAX_STREAMS_PER_PERSON {
        let (status, body) = open_stream(&h, &cookie).await;
        assert_eq!(status, StatusCode::OK);
        open.push(body);
    }
    assert_eq!(
        open_stream(&h, &cookie).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    open.pop();
    assert_eq!(open_stream(&h, &cookie).await.0, StatusCode::OK);
}

/// A request as if from `ip` (the server reads the peer's address from the connection).
fn from_address(
    mut request: axum::http::Request<axum::body::Body>,
    ip: [u8; 4],
) -> axum::http::Request<axum::body::Body> {
    let peer = std::net::SocketAddr::from((ip, 40_000));
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    request
}

async fn session_rows(h: &Harness) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
        .fetch_one(h.store.pool())
        .await
        .unwrap()
}

async fn signed_out_calls_are_limited_per_address(db: Db) {
    let h = Harness::with_config(db, |c| {
        c.ceremonies_per_minute = 3;
        c.failures_per_minute = 4;
    })
    .await;
    let start_sign_in = |ip: [u8; 4]| {
        let request = axum::http::Request::post("/api/start_sign_in")
            .header("content-type", "application/json")
            .header("origin", "http://localhost:3000")
            .body(axum::body::Body::from(r#"{"autofill":false}"#))
            .unwrap();
        h.send(from_address(request, ip))
    };
    // A signed-out start writes nothing (its state is sealed into a cookie): three per minute from
    // one address, then 429 with Retry-After.
    for _ in 0..3 {
        let started = start_sign_in([203, 0, 113, 7]).await;
        assert_eq!(started.status, StatusCode::OK);
        let cookie = started.headers["set-cookie"].to_str().unwrap();
        assert!(
            cookie.starts_with("countersign_sign_in=sealed:v1:"),
            "{cookie}"
        );
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=360"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        // The challenge the browser is given is not readable in the cookie.
        let challenge = started.json["publicKey"]["challenge"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(!cookie.contains(&challenge), "{cookie}");
    }
    let refused = start_sign_in([203, 0, 113, 7]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    assert_eq!(
        start_sign_in([198, 51, 100, 9]).await.status,
        StatusCode::OK
    );
    // Fifty signed-out calls of every kind leave no row behind (the issue found 30 of 50).
    for i in 0..50u8 {
        let path =
            ["/api/start_sign_in", "/api/current_user", "/api/invitation"][usize::from(i % 3)];
        let body = match i % 3 {
            0 => r#"{"autofill":true}"#,
            1 => "{}",
            _ => r#"{"token":"no-such-invitation"}"#,
        };
        let request = axum::http::Request::post(path)
            .header("content-type", "application/json")
            .header("origin", "http://localhost:3000")
            .body(axum::body::Body::from(body))
            .unwrap();
        h.send(from_address(request, [192, 0, 2, 100 + i])).await;
    }
    assert_eq!(session_rows(&h).await, 0);
    let spent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM used_jtis")
        .fetch_one(h.store.pool())
        .await
        .unwrap();
    assert_eq!(spent, 0, "nothing is spent before a finish verifies");

    // Refused backchannel requests count against their address; past four a minute, the address is
    // answered 429 before its requests are read. Another address is not affected.
    let creds = h.poll_client().await;
    h.approver(APPROVER, None).await;
    let wrong = Creds {
        secret: "wrong".into(),
        ..creds.clone()
    };
    let bc_authorize = |creds: &Creds, ip: [u8; 4]| {
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", creds.id, creds.secret));
        let body = serde_urlencoded::to_string([
            ("scope", "openid"),
            ("login_hint", APPROVER),
            ("authorization_details", &action_details()),
        ])
        .unwrap();
        let request = axum::http::Request::post("/bc-authorize")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", format!("Basic {basic}"))
            .body(axum::body::Body::from(body))
            .unwrap();
        h.send(from_address(request, ip))
    };
    for _ in 0..5 {
        bc_authorize(&wrong, [203, 0, 113, 7])
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let limited = bc_authorize(&creds, [203, 0, 113, 7]).await;
    limited.assert_error(StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable");
    assert!(limited.headers.contains_key("retry-after"));
    assert_eq!(
        bc_authorize(&creds, [198, 51, 100, 9]).await.status,
        StatusCode::OK
    );
    assert_eq!(h.count_requests("1 = 1").await, 1);
}
