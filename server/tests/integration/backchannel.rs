//! `POST /bc-authorize` (CIBA §7): validation and every error of §13.
use axum::http::{header, StatusCode};
use server::{
    ciba::{AuthMethod, DeliveryMode},
    clock::Clock,
};

use crate::{common::*, on_both_databases};

on_both_databases!(
    a_valid_request_is_acknowledged_and_stored_pending,
    client_authentication_failures_are_invalid_client,
    client_secret_post_authenticates_post_clients,
    scope_must_be_present_and_include_openid,
    exactly_one_hint_must_name_a_known_approver,
    binding_messages_are_validated,
    user_codes_are_required_when_the_approver_has_one,
    requested_expiry_is_honoured_up_to_the_maximum,
    authorization_details_must_name_action_target_and_consequence,
    malformed_bodies_get_invalid_request_never_a_500,
    ping_clients_must_send_a_notification_token,
    an_id_token_hint_names_the_approver_it_was_issued_for,
);

async fn a_valid_request_is_acknowledged_and_stored_pending(db: Db) {
    // CIBA §7.3: auth_req_id, expires_in and interval.
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let approver = h.approver(APPROVER, None).await;
    let r = h
        .bc_authorize(&creds, "Jane@Example.com", &[("binding_message", "W4SCT")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    let id = r.json["auth_req_id"].as_str().unwrap();
    assert!(id.len() >= 43, "at least 256 bits of base64url: {id}");
    assert_eq!(r.json["expires_in"], 300);
    assert_eq!(r.json["interval"], 5);
    let row = h.store.auth_request_row(id).await.unwrap().unwrap();
    assert_eq!(row.status, "pending");
    assert_eq!(
        row.approver_id,
        Some(approver.id),
        "login_hint resolved by email, case-insensitively"
    );
    assert_eq!(row.client_id, creds.id);
    assert_eq!(row.scope, "openid email");
    assert_eq!(row.binding_message.as_deref(), Some("W4SCT"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&row.authorization_details).unwrap(),
        action_value()
    );
    assert_eq!(row.expires_at - row.created_at, 300_000);
    // Two requests never share an id.
    assert_ne!(h.start(&creds, APPROVER).await, id);
}

async fn client_authentication_failures_are_invalid_client(db: Db) {
    // CIBA §13: invalid_client, 401, with WWW-Authenticate.
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    h.approver(APPROVER, None).await;
    let details = action_details();
    let form = [
        ("scope", "openid"),
        ("login_hint", APPROVER),
        ("authorization_details", details.as_str()),
    ];
    h.post("/bc-authorize", None, &form)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    let wrong = Creds {
        id: creds.id.clone(),
        secret: "not-the-secret".into(),
    };
    h.post("/bc-authorize", Some(&wrong), &form)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    let unknown = Creds {
        id: "nobody".into(),
        secret: creds.secret.clone(),
    };
    h.post("/bc-authorize", Some(&unknown), &form)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    // A basic client may not switch to client_secret_post.
    let mut post_form = form.to_vec();
    post_form.extend([
        ("client_id", creds.id.as_str()),
        ("client_secret", creds.secret.as_str()),
    ]);
    h.post("/bc-authorize", None, &post_form)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    // Two methods at once is a malformed request (RFC 6749 §2.3).
    h.post("/bc-authorize", Some(&creds), &post_form)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    // A disabled client is refused (after the directory refresh that every instance runs each second).
    assert_eq!(
        h.bc_authorize(&creds, APPROVER, &[]).await.status,
        StatusCode::OK
    );
    h.store
        .set_client_disabled(&creds.id, true, h.clock.now())
        .await
        .unwrap();
    h.server.ciba.refresh().await.unwrap();
    h.bc_authorize(&creds, APPROVER, &[])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    assert_eq!(
        h.count_requests("1 = 1").await,
        1,
        "refused requests store nothing"
    );
}

async fn client_secret_post_authenticates_post_clients(db: Db) {
    let h = Harness::new(db).await;
    let creds = h
        .client(DeliveryMode::Poll, AuthMethod::ClientSecretPost)
        .await;
    h.approver(APPROVER, None).await;
    let details = action_details();
    let form = [
        ("scope", "openid"),
        ("login_hint", APPROVER),
        ("authorization_details", details.as_str()),
        ("client_id", creds.id.as_str()),
        ("client_secret", creds.secret.as_str()),
    ];
    let r = h.post("/bc-authorize", None, &form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    h.post("/bc-authorize", Some(&creds), &form[..3])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
}

async fn scope_must_be_present_and_include_openid(db: Db) {
    // CIBA §7.1: scope is REQUIRED and includes openid; §13 invalid_scope.
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    h.approver(APPROVER, None).await;
    h.bc_authorize(&creds, APPROVER, &[("scope", "")])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    h.bc_authorize(&creds, APPROVER, &[("scope", "email")])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_scope");
    let r = h
        .bc_authorize(&creds, APPROVER, &[("scope", "openid profile")])
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_scope");
    assert!(r.description().contains("profile"), "{}", r.description());
    h.bc_authorize(&creds, APPROVER, &[("scope", "openid admin")])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_scope");
    assert_eq!(h.count_requests("1 = 1").await, 0);
}

async fn exactly_one_hint_must_name_a_known_approver(db: Db) {
    // CIBA §7.1: exactly one of login_hint_token, id_token_hint, login_hint; §13 unknown_user_id.
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    h.approver(APPROVER, None).await;
    h.bc_authorize(&creds, APPROVER, &[("login_hint", "")])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    h.bc_authorize(&creds, APPROVER, &[("id_token_hint", "x.y.z")])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    h.bc_authorize(&creds, "bob@example.com", &[])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "unknown_user_id");
    h.bc_authorize(
        &creds,
        APPROVER,
        &[("login_hint", ""), ("id_token_hint", "not-a-jwt")],
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
}

async fn binding_messages_are_validated(db: Db) {
    // CIBA §7.1 binding_message; §13 invalid_binding_message.
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    h.approver(APPROVER, None).await;
    let long = "x".repeat(101);
    for bad in [
        "two\nlines",
        "hidden\u{200B}text",
        "\u{202E}reversed",
        // What the request page flags, the server refuses too (one rule, `app::text`): a combining
        // grapheme joiner, a variation selector and an invisible tag character.
        "A\u{034F}B",
        "7KQ\u{FE0F}",
        "code\u{E0041}",
        long.as_str(),
    ] {
        h.bc_authorize(&creds, APPROVER, &[("binding_message", bad)])
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_binding_message");
    }
    assert_eq!(
        h.bc_authorize(
            &creds,
            APPROVER,
            &[("binding_message", "Order 1234 · code 7KQ")]
        )
        .await
        .status,
        StatusCode::OK
    );
}

async fn user_codes_are_required_when_the_approver_has_one(db: Db) {
    // CIBA §7.1 user_code; §13 missing_user_code and invalid_user_code.
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    h.approver(APPROVER, Some("4711-jane")).await;
    h.bc_authorize(&creds, APPROVER, &[])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "missing_user_code");
    h.bc_authorize(&creds, APPROVER, &[("user_code", "4711-JANE")])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_user_code");
    assert_eq!(h.count_requests("1 = 1").await, 0);
    assert_eq!(
        h.bc_authorize(&creds, APPROVER, &[("user_code", "4711-jane")])
            .await
            .status,
        StatusCode::OK
    );
}

async fn requested_expiry_is_honoured_up_to_the_maximum(db: Db) {
    // CIBA §7.1 requested_expiry: a positive integer of seconds.
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    h.approver(APPROVER, None).await;
    assert_eq!(
        h.bc_authorize(&creds, APPROVER, &[("requested_expiry", "60")])
            .await
            .json["expires_in"],
        60
    );
    assert_eq!(
        h.bc_authorize(&creds, APPROVER, &[("requested_expiry", "86400")])
            .await
            .json["expires_in"],
        1800
    );
    for bad in ["0", "-5", "1.5", "soon"] {
        h.bc_authorize(&creds, APPROVER, &[("requested_expiry", bad)])
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
}

async fn authorization_details_must_name_action_target_and_consequence(db: Db) {
    // RFC 9396 §5: invalid_authorization_details; Countersign's agent_action type.
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    h.approver(APPROVER, None).await;
    let r = h
        .bc_authorize(&creds, APPROVER, &[("authorization_details", "")])
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    assert!(
        r.description().contains("action, target and consequence"),
        "{}",
        r.description()
    );
    let no_consequence = r#"[{"type":"agent_action","action":"Delete","target":"prod-db"}]"#;
    let r = h
        .bc_authorize(
            &creds,
            APPROVER,
            &[("authorization_details", no_consequence)],
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_authorization_details");
    assert!(
        r.description().contains("consequence"),
        "{}",
        r.description()
    );
    let two = format!("[{0},{0}]", action_value()[0]);
    h.bc_authorize(&creds, APPROVER, &[("authorization_details", &two)])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_authorization_details");
    h.bc_authorize(&creds, APPROVER, &[("authorization_details", "{not json")])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_authorization_details");
    assert_eq!(h.count_requests("1 = 1").await, 0);
}

async fn malformed_bodies_get_invalid_request_never_a_500(db: Db) {
    // RFC 6749 §3.1: no repeated parameters; the body is application/x-www-form-urlencoded.
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    h.approver(APPROVER, None).await;
    let json = serde_json::json!({"scope": "openid", "login_hint": APPROVER})
        .to_string()
        .into_bytes();
    h.post_raw("/bc-authorize", Some(&creds), "application/json", json)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    let repeated = format!("scope=openid&scope=openid&login_hint={APPROVER}").into_bytes();
    let r = h
        .post_raw(
            "/bc-authorize",
            Some(&creds),
            "application/x-www-form-urlencoded",
            repeated,
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    assert!(r.description().contains("repeated"));
    let huge = format!("scope=openid&login_hint={}", "a".repeat(200_000)).into_bytes();
    h.post_raw(
        "/bc-authorize",
        Some(&creds),
        "application/x-www-form-urlencoded",
        huge,
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    let bad_utf8 = b"scope=openid&login_hint=%FF%FE".to_vec();
    h.post_raw(
        "/bc-authorize",
        Some(&creds),
        "application/x-www-form-urlencoded",
        bad_utf8,
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    let garbage = vec![0xF0, 0x28, 0x8C, 0x28, b'&', b'&', b'='];
    let r = h
        .post_raw(
            "/token",
            Some(&creds),
            "application/x-www-form-urlencoded; charset=UTF-8",
            garbage,
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    let r = h
        .post_raw(
            "/token",
            Some(&creds),
            "text/plain",
            b"grant_type=x".to_vec(),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(h.count_requests("1 = 1").await, 0);
}

async fn ping_clients_must_send_a_notification_token(db: Db) {
    // CIBA §7.1: client_notification_token is REQUIRED for ping and push clients.
    let h = Harness::new(db).await;
    let ping = h
        .client(DeliveryMode::Ping, AuthMethod::ClientSecretBasic)
        .await;
    h.approver(APPROVER, None).await;
    h.bc_authorize(&ping, APPROVER, &[])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    let token = server::secrets::random_token(32);
    let r = h
        .bc_authorize(&ping, APPROVER, &[("client_notification_token", &token)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let row = h
        .store
        .auth_request_row(r.json["auth_req_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.notification_token, Some(token));
    let push = h
        .client(DeliveryMode::Push, AuthMethod::ClientSecretBasic)
        .await;
    let r = h
        .bc_authorize(
            &push,
            APPROVER,
            &[("client_notification_token", "tok-123456789")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.json.get("interval").is_none(),
        "push clients never poll, so no interval"
    );
}

async fn an_id_token_hint_names_the_approver_it_was_issued_for(db: Db) {
    // CIBA §7.1 id_token_hint: an ID token previously issued to this client.
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let other = h.poll_client().await;
    let approver = h.approver(APPROVER, None).await;
    let id = h.approved(&creds, &approver.id).await;
    let tokens = h.poll(&creds, &id).await.json;
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    // RFC 8725 §3.11: the access token is signed by the same key and names the same subject and
    // client, but it is typed at+jwt, so it is no ID token.
    let access_token = tokens["access_token"].as_str().unwrap();
    h.bc_authorize(
        &creds,
        APPROVER,
        &[("login_hint", ""), ("id_token_hint", access_token)],
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    h.clock.advance_secs(3600); // expired ID tokens are still valid hints
    let r = h
        .bc_authorize(
            &creds,
            APPROVER,
            &[("login_hint", ""), ("id_token_hint", &id_token)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let row = h
        .store
        .auth_request_row(r.json["auth_req_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.approver_id, Some(approver.id));
    h.bc_authorize(
        &other,
        APPROVER,
        &[("login_hint", ""), ("id_token_hint", &id_token)],
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    let mut forged = id_token.clone();
    forged.replace_range(forged.len() - 4.., "AAAA");
    h.bc_authorize(
        &creds,
        APPROVER,
        &[("login_hint", ""), ("id_token_hint", &forged)],
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
}
