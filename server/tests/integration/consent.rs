//! No token without consent, attacked from below the API: a status set by one UPDATE, or an approved
//! request's details edited afterwards, earns no tokens; the request is flagged and the audit names it.
//! Tokens that are issued name the decision record they come from.
use axum::http::StatusCode;

use crate::{common::*, on_both_databases};

on_both_databases!(
    a_status_set_in_the_database_earns_no_tokens,
    details_edited_after_the_approval_earn_no_tokens,
    another_requests_record_copied_in_earns_no_tokens,
    a_redeemed_request_set_back_to_approved_earns_no_second_tokens,
    tokens_and_introspection_name_their_decision_record,
    an_approval_signed_before_a_key_rotation_still_redeems
);

async fn issued_tokens(h: &Harness, id: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM issued_tokens WHERE auth_req_id = $1")
        .bind(id)
        .fetch_one(h.store.pool())
        .await
        .unwrap();
    n
}

async fn a_status_set_in_the_database_earns_no_tokens(db: Db) {
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    h.approver(APPROVER, None).await;
    let id = h.start(&creds, APPROVER).await;
    h.poll(&creds, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "authorization_pending");

    sqlx::query(
        "UPDATE auth_requests SET status = 'approved', decided_at = created_at WHERE id = $1",
    )
    .bind(&id)
    .execute(h.store.pool())
    .await
    .unwrap();
    // As after a restart, or a NOTIFY on PostgreSQL: the next poll reads the store.
    h.server.ciba.distrust_poll_cache();
    for _ in 0..2 {
        h.clock.advance_secs(6);
        h.poll(&creds, &id)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    assert_eq!(issued_tokens(&h, &id).await, 0);
    assert_eq!(h.count_requests("status = 'redeemed'").await, 0);
    assert_eq!(
        h.store.consent_alerts().await.unwrap(),
        vec![(
            id.clone(),
            "the request is marked approved but has no decision record".to_owned()
        )],
        "flagged once"
    );
    let found = audit_problems(&h.store).await;
    for problem in [
        "the request is marked approved, but there is no decision record for it",
        "the token endpoint refused an approval that did not verify: the request is marked approved but has no decision record",
    ] {
        assert!(
            found.contains(&(id.clone(), problem.to_owned())),
            "{problem} in {found:?}"
        );
    }
}

async fn details_edited_after_the_approval_earn_no_tokens(db: Db) {
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let id = h.approved(&creds, &jane.id).await;
    sqlx::query(
        "UPDATE auth_requests SET authorization_details = \
         replace(authorization_details, '120.00', '12000.00') WHERE id = $1",
    )
    .bind(&id)
    .execute(h.store.pool())
    .await
    .unwrap();

    h.poll(&creds, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(issued_tokens(&h, &id).await, 0);
    assert_eq!(
        h.store.consent_alerts().await.unwrap(),
        vec![(
            id.clone(),
            "the request has changed since it was decided".to_owned()
        )]
    );
    let found = audit_problems(&h.store).await;
    assert!(found.contains(&(
        id.clone(),
        "the request has changed since it was decided".to_owned()
    )));
}

async fn another_requests_record_copied_in_earns_no_tokens(db: Db) {
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let approved = h.approved(&creds, &jane.id).await;
    let pending = h.start(&creds, APPROVER).await;
    // The decision table takes inserts: a forger copies a genuine approval onto another request.
    sqlx::query(
        "INSERT INTO decisions (auth_req_id, request_digest, decision, reason, approver_id, \
         credential_id, authenticator_data, client_data_json, signature, nonce, \
         credential_public_key, decided_at, prev_hash, record_hash, jws) \
         SELECT $1, request_digest, decision, reason, approver_id, credential_id, \
         authenticator_data, client_data_json, signature, nonce, credential_public_key, \
         decided_at, prev_hash, record_hash, jws FROM decisions WHERE auth_req_id = $2",
    )
    .bind(&pending)
    .bind(&approved)
    .execute(h.store.pool())
    .await
    .unwrap();
    sqlx::query(
        "UPDATE auth_requests SET status = 'approved', decided_at = created_at WHERE id = $1",
    )
    .bind(&pending)
    .execute(h.store.pool())
    .await
    .unwrap();
    h.server.ciba.distrust_poll_cache();
    h.poll(&creds, &pending)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(issued_tokens(&h, &pending).await, 0);
    assert_eq!(
        h.store.consent_alerts().await.unwrap(),
        vec![(
            pending.clone(),
            "the request has changed since it was decided".to_owned()
        )]
    );
}

async fn a_redeemed_request_set_back_to_approved_earns_no_second_tokens(db: Db) {
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let id = h.approved(&creds, &jane.id).await;
    let first = h.poll(&creds, &id).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);

    sqlx::query("UPDATE auth_requests SET status = 'approved', redeemed_at = NULL WHERE id = $1")
        .bind(&id)
        .execute(h.store.pool())
        .await
        .unwrap();
    h.server.ciba.distrust_poll_cache();
    h.clock.advance_secs(6);
    // RFC 6749 §10.5: treated as the replay it is, and the first tokens are revoked.
    h.poll(&creds, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(issued_tokens(&h, &id).await, 1);
    let tool = h.resource_server().await;
    let introspected = h
        .post(
            "/introspect",
            Some(&tool),
            &[("token", first.json["access_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(introspected.json["active"], false);
}

async fn tokens_and_introspection_name_their_decision_record(db: Db) {
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let id = h.approved(&creds, &jane.id).await;
    let record = h.store.decisions_for(&id).await.unwrap().remove(0);

    let tokens = h.poll(&creds, &id).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    for token in ["access_token", "id_token"] {
        let claims = claims(tokens.json[token].as_str().unwrap());
        assert_eq!(
            claims["countersign_decision"],
            record.record_hash.as_str(),
            "{token}"
        );
        // auth_time is the sealed moment of the decision, not a column one UPDATE could move.
        assert_eq!(claims["auth_time"], record.decided_at / 1000, "{token}");
    }
    let tool = h.resource_server().await;
    let introspected = h
        .post(
            "/introspect",
            Some(&tool),
            &[("token", tokens.json["access_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(introspected.json["active"], true);
    assert_eq!(
        introspected.json["countersign_decision"],
        record.record_hash.as_str()
    );
    assert!(h.store.consent_alerts().await.unwrap().is_empty());
    assert_eq!(audit_problems(&h.store).await, vec![]);
}

/// A request may wait 30 minutes; a retired key stays published only as long as a token lives (5). The
/// decision record it signed still proves the approval.
async fn an_approval_signed_before_a_key_rotation_still_redeems(db: Db) {
    use server::clock::Clock;
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let r = h
        .bc_authorize(&creds, APPROVER, &[("requested_expiry", "1800")])
        .await;
    let id = r.json["auth_req_id"].as_str().unwrap().to_owned();
    h.approve(&id, &jane.id).await;
    let old = h.server.ciba.keys().active_kid();
    server::signing::rotate(&h.store, &test_kek(), h.clock.now())
        .await
        .unwrap();
    h.clock.advance_secs(400);
    h.server.ciba.refresh().await.unwrap();
    let published = h.get("/jwks.json").await.json;
    assert!(
        !published.to_string().contains(&old),
        "the old key is no longer published"
    );
    let tokens = h.poll(&creds, &id).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.json);
    assert_eq!(issued_tokens(&h, &id).await, 1);
}
