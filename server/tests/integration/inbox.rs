//! The live inbox is told of changes, not polled: a new request and a decision reach every open inbox
//! of their approver (in-process on SQLite; by NOTIFY on PostgreSQL, from any instance).
use std::time::Duration;

use server::ciba::{Decision, EVERY_INBOX};
use tokio::sync::broadcast::Receiver;

use crate::{common::*, on_both_databases};

on_both_databases!(new_requests_and_decisions_reach_the_approvers_open_inbox);

/// The next announcement for `approver_id` (skipping anyone else's), within five seconds.
async fn next_for(changes: &mut Receiver<String>, approver_id: &str) {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let id = changes.recv().await.unwrap();
            if id == approver_id {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no announcement for {approver_id} within 5 s"));
}

async fn new_requests_and_decisions_reach_the_approvers_open_inbox(db: Db) {
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let bob = h.approver("bob@example.com", None).await;
    let mut changes = h.server.ciba.inbox_changes();
    if db == Db::Postgres {
        // Decisions below are made on a second instance: they reach this one's inboxes too.
        server::spawn_decision_listener(h.server.ciba.clone(), h.url().to_owned());
        // The listener says "every inbox" once it is listening.
        next_for(&mut changes, EVERY_INBOX).await;
    }
    let other = match db {
        Db::Postgres => Some(
            server::build(
                &test_config(),
                server::store::Store::connect(h.url()).await.unwrap(),
                h.clock.clone(),
            )
            .await
            .unwrap(),
        ),
        Db::Sqlite => None,
    };
    let ciba = other.as_ref().map_or(&h.server.ciba, |o| &o.ciba);

    let r = h.bc_authorize(&creds, "bob@example.com", &[]).await;
    assert!(r.json["auth_req_id"].is_string(), "{}", r.text);
    next_for(&mut changes, &bob.id).await;
    let id = h.start(&creds, APPROVER).await;
    next_for(&mut changes, &jane.id).await;
    decide(ciba, &id, &jane.id, Decision::Deny { reason: None })
        .await
        .unwrap();
    next_for(&mut changes, &jane.id).await;
}
