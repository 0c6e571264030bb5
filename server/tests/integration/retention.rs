//! Retention: the periodic sweep deletes expired sessions and the notification outbox of ended
//! requests, and never the evidence.
use server::clock::Clock;

use crate::{common::*, on_both_databases};

on_both_databases!(the_sweep_deletes_what_ended_and_keeps_the_evidence);

async fn the_sweep_deletes_what_ended_and_keeps_the_evidence(db: Db) {
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let now = h.clock.now();
    h.store.save_session("old", "{}", now - 1).await.unwrap();
    h.store
        .save_session("live", "{}", now + 3_600_000)
        .await
        .unwrap();
    let ended = h.approved(&creds, &jane.id).await;
    let live = h.start(&creds, APPROVER).await;
    for id in [&ended, &live] {
        assert!(h
            .store
            .claim_notification(id, "push", now, 1_000)
            .await
            .unwrap());
    }
    // The first request's lifetime (300 s) passes; the second is made later and is still pending.
    h.clock.advance_secs(301);
    let later = h.start(&creds, APPROVER).await;
    assert!(h
        .store
        .claim_notification(&later, "push", h.clock.now(), 1_000)
        .await
        .unwrap());

    let swept = h.server.ciba.sweep().await.unwrap();
    assert_eq!((swept.sessions, swept.outbox), (1, 2), "{swept:?}");
    let sessions: Vec<(String,)> = sqlx::query_as("SELECT id FROM sessions")
        .fetch_all(h.store.pool())
        .await
        .unwrap();
    assert_eq!(sessions, [("live".to_owned(),)]);
    let outbox: Vec<(String,)> = sqlx::query_as("SELECT auth_req_id FROM notification_outbox")
        .fetch_all(h.store.pool())
        .await
        .unwrap();
    assert_eq!(outbox, [(later.clone(),)]);
    // The evidence stays: every request and the decision record.
    assert_eq!(h.count_requests("1 = 1").await, 3);
    assert_eq!(h.store.decisions().await.unwrap().len(), 1);
    assert!(audit_problems(&h.store).await.is_empty());
    // Nothing more to do the second time.
    let again = h.server.ciba.sweep().await.unwrap();
    assert_eq!((again.sessions, again.outbox), (0, 0));
}
