//! Abuse limits against approval fatigue: pending requests per approver per client, and new requests
//! per client per minute. Refusals are CIBA §13 access_denied and never reach the approver.
use axum::http::StatusCode;
use server::ciba::Decision;

use crate::{common::*, on_both_databases};

on_both_databases!(
    pending_requests_per_approver_are_limited,
    a_concurrent_burst_cannot_slip_past_the_limit,
    requests_per_minute_are_limited,
    zero_turns_the_limits_off
);

async fn pending_requests_per_approver_are_limited(db: Db) {
    let h = Harness::new(db).await; // default: 5 pending per approver per client
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    h.approver("bob@example.com", None).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(h.start(&creds, APPROVER).await);
    }
    let r = h.bc_authorize(&creds, APPROVER, &[]).await;
    r.assert_error(StatusCode::FORBIDDEN, "access_denied");
    assert!(
        r.description()
            .contains("COUNTERSIGN_MAX_PENDING_PER_APPROVER"),
        "{}",
        r.description()
    );
    assert_eq!(
        h.count_requests("1 = 1").await,
        5,
        "the excess request never reaches the approver"
    );
    // Another approver, or another client, has its own allowance.
    h.start(&creds, "bob@example.com").await;
    let other = h.poll_client().await;
    h.start(&other, APPROVER).await;
    // A decision frees a place; so does expiry.
    decide(
        &h.server.ciba,
        &ids[0],
        &jane.id,
        Decision::Deny { reason: None },
    )
    .await
    .unwrap();
    h.start(&creds, APPROVER).await;
    h.bc_authorize(&creds, APPROVER, &[])
        .await
        .assert_error(StatusCode::FORBIDDEN, "access_denied");
    h.clock.advance_secs(301);
    h.start(&creds, APPROVER).await;
}

async fn a_concurrent_burst_cannot_slip_past_the_limit(db: Db) {
    // Requests arriving together are committed together; the limit still holds exactly.
    let h = std::sync::Arc::new(Harness::new(db).await);
    let creds = h.poll_client().await;
    h.approver(APPROVER, None).await;
    let burst = (0..40).map(|_| {
        let (h, creds) = (h.clone(), creds.clone());
        tokio::spawn(async move { h.bc_authorize(&creds, APPROVER, &[]).await })
    });
    let responses: Vec<Response> = futures::future::join_all(burst)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        responses
            .iter()
            .filter(|r| r.status == StatusCode::OK)
            .count(),
        5
    );
    for refused in responses.iter().filter(|r| r.status != StatusCode::OK) {
        refused.assert_error(StatusCode::FORBIDDEN, "access_denied");
    }
    assert_eq!(h.count_requests("status = 'pending'").await, 5);
}

async fn requests_per_minute_are_limited(db: Db) {
    let h = Harness::with_config(db, |c| {
        c.max_requests_per_minute = 3;
        c.max_pending_per_approver = 0;
    })
    .await;
    let creds = h.poll_client().await;
    h.approver(APPROVER, None).await;
    for _ in 0..3 {
        h.start(&creds, APPROVER).await;
        h.clock.advance_secs(10);
    }
    let r = h.bc_authorize(&creds, APPROVER, &[]).await;
    r.assert_error(StatusCode::FORBIDDEN, "access_denied");
    assert!(
        r.description()
            .contains("COUNTERSIGN_MAX_REQUESTS_PER_MINUTE"),
        "{}",
        r.description()
    );
    assert_eq!(h.count_requests("1 = 1").await, 3);
    let other = h.poll_client().await;
    h.start(&other, APPROVER).await;
    // A minute after the first request, one more fits.
    h.clock.advance_secs(31);
    h.start(&creds, APPROVER).await;
    h.bc_authorize(&creds, APPROVER, &[])
        .await
        .assert_error(StatusCode::FORBIDDEN, "access_denied");
}

async fn zero_turns_the_limits_off(db: Db) {
    let h = Harness::with_config(db, |c| {
        c.max_requests_per_minute = 0;
        c.max_pending_per_approver = 0;
    })
    .await;
    let creds = h.poll_client().await;
    h.approver(APPROVER, None).await;
    for _ in 0..70 {
        h.start(&creds, APPROVER).await;
    }
    assert_eq!(h.count_requests("status = 'pending'").await, 70);
}
