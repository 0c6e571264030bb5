//! Offboarding (`countersign approver disable EMAIL`): the approver's sessions end, agents asking for
//! them are refused, their pending requests are answered `access_denied` rather than left to hang
//! (CIBA §11: the end-user denied, or the grant can no longer be given), and an approval of theirs not
//! yet redeemed earns nothing.
use axum::http::StatusCode;
use server::{clock::Clock, identity::approvers};

use crate::{common::*, on_both_databases};

on_both_databases!(a_disabled_approver_is_offboarded_at_once);

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
