//! Offboarding (`countersign approver disable EMAIL`): the approver's sessions end, agents asking for
//! them are refused, their pending requests are answered `access_denied` rather than left to hang
//! (CIBA §11: the end-user denied, or the grant can no longer be given), and an approval of theirs not
//! yet redeemed earns nothing.
use axum::http::StatusCode;
use server::{clock::Clock, identity::approvers};

use crate::{common::*, on_both_databases};

on_both_databases!(
    a_disabled_approver_is_offboarded_at_once,
    a_suspended_passkey_and_a_disabled_agent_withdraw_what_they_left_unredeemed,
);

async fn issued_tokens(h: &Harness) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM issued_tokens")
        .fetch_one(h.store.pool())
        .await
        .unwrap()
}

async fn a_disabled_approver_is_offboarded_at_once(db: Db) {
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let approved = h.approved(&creds, &jane.id).await;
    let waiting = h.start(&creds, APPROVER).await;
    h.poll(&creds, &waiting)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "authorization_pending");
    let epoch = h.store.session_epoch(&jane.id).await.unwrap();
    assert!(epoch.is_some());

    assert_eq!(
        approvers::disable(&h.store, " Jane@Example.com", h.clock.now())
            .await
            .unwrap(),
        Some(1),
        "one request was still pending"
    );
    assert_eq!(
        approvers::disable(&h.store, "nobody@example.com", h.clock.now())
            .await
            .unwrap(),
        None
    );
    // What every instance's upkeep does each second.
    h.server.ciba.refresh().await.unwrap();

    // Sessions: over.
    assert_eq!(h.store.session_epoch(&jane.id).await.unwrap(), None);
    // The waiting agent: told, not left polling until expiry.
    h.clock.advance_secs(6);
    let r = h.poll(&creds, &waiting).await;
    r.assert_error(StatusCode::BAD_REQUEST, "access_denied");
    assert!(r.description().contains("disabled"), "{}", r.description());
    // The approval not yet redeemed: no tokens.
    h.poll(&creds, &approved)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "access_denied");
    assert_eq!(issued_tokens(&h).await, 0);
    // New requests for them: refused as for an unknown user (CIBA §13).
    h.clock.advance_secs(2);
    h.bc_authorize(&creds, APPROVER, &[])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "unknown_user_id");
    // Nothing was rewritten: the evidence still verifies.
    assert!(audit_problems(&h.store).await.is_empty());
}

/// Issue 22, revocation withdraws: an approval whose passkey was since suspended (its counter went
/// backwards: it may be a copy) earns nothing; disabling an agent withdraws its pending and
/// unredeemed requests for good: a push delivery carries only the error (CIBA §10.3.1), and enabling
/// the agent again brings none of them back, while its new requests work.
async fn a_suspended_passkey_and_a_disabled_agent_withdraw_what_they_left_unredeemed(db: Db) {
    let h = Harness::new(db).await;
    let jane = h.approver(APPROVER, None).await;
    let agent = h.poll_client().await;
    let unredeemed = h.approved(&agent, &jane.id).await;
    let waiting = h.start(&agent, APPROVER).await;
    h.clock.advance_millis(1);
    assert!(h
        .store
        .set_client_disabled(&agent.id, true, h.clock.now())
        .await
        .unwrap());
    h.server.ciba.refresh().await.unwrap();
    // What a push delivery would carry now: the error, never tokens.
    let pushed = h.server.ciba.push_result(&unredeemed).await.unwrap();
    assert_eq!(pushed["error"], "access_denied", "{pushed}");
    assert!(pushed.get("access_token").is_none(), "{pushed}");
    h.poll(&agent, &unredeemed)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");

    h.clock.advance_millis(1);
    assert!(h
        .store
        .set_client_disabled(&agent.id, false, h.clock.now())
        .await
        .unwrap());
    h.server.ciba.refresh().await.unwrap();
    h.approve(&waiting, &jane.id).await;
    for withdrawn in [&unredeemed, &waiting] {
        let answer = h.poll(&agent, withdrawn).await;
        answer.assert_error(StatusCode::BAD_REQUEST, "access_denied");
        assert!(
            answer.description().contains("withdrew it"),
            "{}",
            answer.description()
        );
    }
    assert_eq!(issued_tokens(&h).await, 0);
    h.clock.advance_millis(1);
    let fresh = h.approved(&agent, &jane.id).await;
    assert_eq!(h.poll(&agent, &fresh).await.status, StatusCode::OK);
    assert_eq!(issued_tokens(&h).await, 1);

    // The passkey that approved is suspended before the agent collects.
    let approved = h.approved(&agent, &jane.id).await;
    h.store
        .suspend_passkey(
            &test_credential(&jane.id),
            "signature counter went backwards",
            h.clock.now(),
        )
        .await
        .unwrap();
    let answer = h.poll(&agent, &approved).await;
    answer.assert_error(StatusCode::BAD_REQUEST, "access_denied");
    assert!(
        answer.description().contains("revoked or suspended"),
        "{}",
        answer.description()
    );
    assert_eq!(issued_tokens(&h).await, 1);
}
