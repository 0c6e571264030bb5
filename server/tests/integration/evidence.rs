//! The evidence, attacked from below the API by someone who can write to the database but holds
//! neither the key-encryption key nor the checkpoints: a passkey planted or re-pointed in `passkeys`
//! signs in and approves nothing; a key registry entry forged without the server's key earns no
//! tokens and the audit names it; a deleted tail of the decision chain, or an emptied table, is shown
//! by the checkpoint kept outside the database.
use std::sync::Arc;

use axum::http::StatusCode;
use server::{
    ciba::{
        audit::Subject,
        checkpoint,
        record::{decision_challenge, request_digest},
        Decision,
    },
    clock::Clock,
    identity::registry,
    store::{key_registry::KeyEntryRow, passkeys::PasskeyRow},
};

use crate::{common::*, on_both_databases};

on_both_databases!(
    a_passkey_written_into_the_database_is_refused,
    a_forged_registry_entry_earns_no_tokens,
    a_deleted_tail_is_shown_by_the_checkpoint,
    an_emptied_decision_table_is_shown_by_the_checkpoint,
    an_older_checkpoint_put_back_is_seen_at_start_and_by_the_audit
);

async fn plant(h: &Harness, row: &PasskeyRow) {
    sqlx::query(
        "INSERT INTO passkeys (credential_id, approver_id, name, passkey, backup_state, created_at) \
         VALUES ($1, $2, 'Planted', $3, 0, 0)",
    )
    .bind(&row.credential_id)
    .bind(&row.approver_id)
    .bind(&row.passkey)
    .execute(h.store.pool())
    .await
    .unwrap();
}

async fn a_passkey_written_into_the_database_is_refused(db: Db) {
    let h = Harness::new(db).await;
    let jane = h.approver(APPROVER, None).await;
    let mallory = h.approver("mallory@example.com", None).await;
    let accounts = h.server.accounts.clone();
    let ids = |rows: Vec<server::identity::accounts::AccountPasskey>| -> Vec<String> {
        rows.into_iter().map(|r| r.credential_id).collect()
    };

    // Registered the ordinary way: usable.
    let own = passkey_row("AAAA", &jane.id, TEST_PASSKEY);
    register_passkey(&h, &own, TEST_PASSKEY).await;
    assert!(accounts.passkey("AAAA").await.unwrap().is_some());

    // Planted: a row in `passkeys` with the attacker's key, and no registry entry.
    plant(&h, &passkey_row("BBBB", &jane.id, 9)).await;
    assert!(accounts.passkey("BBBB").await.unwrap().is_none());

    // Re-pointed: Mallory's own, properly registered passkey moved to Jane's account.
    let theirs = passkey_row("CCCC", &mallory.id, 9);
    register_passkey(&h, &theirs, 9).await;
    sqlx::query("UPDATE passkeys SET approver_id = $1 WHERE credential_id = 'CCCC'")
        .bind(&jane.id)
        .execute(h.store.pool())
        .await
        .unwrap();
    assert!(accounts.passkey("CCCC").await.unwrap().is_none());

    // Swapped: Jane's registered passkey given the attacker's key.
    sqlx::query("UPDATE passkeys SET passkey = $1 WHERE credential_id = 'AAAA'")
        .bind(passkey_json("AAAA", 9))
        .execute(h.store.pool())
        .await
        .unwrap();
    assert!(accounts.passkey("AAAA").await.unwrap().is_none());
    assert_eq!(
        ids(accounts.passkeys(&jane.id).await.unwrap()),
        Vec::<String>::new()
    );

    // An entry appended by hand, chained correctly but without the server's signature.
    let head = h.store.key_registry().await.unwrap().pop().unwrap();
    let mut forged = KeyEntryRow {
        seq: 0,
        credential_id: "BBBB".into(),
        approver_id: jane.id.clone(),
        public_key: test_public_key(9),
        registered_at: h.clock.now(),
        provenance: None,
        prev_hash: head.entry_hash,
        entry_hash: String::new(),
        jws: "eyJhbGciOiJFUzI1NiJ9.e30.forged".into(),
    };
    forged.entry_hash = registry::entry_hash(&forged);
    insert_entry(&h, &forged).await;
    assert!(accounts.passkey("BBBB").await.unwrap().is_none());
    let problems = audit_problems(&h.store).await;
    assert!(
        problems
            .iter()
            .any(|(subject, problem)| subject.contains("(BBBB)")
                && problem == "the server's signature does not verify"),
        "{problems:?}"
    );
}

async fn insert_entry(h: &Harness, entry: &KeyEntryRow) {
    sqlx::query(
        "INSERT INTO key_registry (credential_id, approver_id, public_key, registered_at, prev_hash, entry_hash, jws) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&entry.credential_id)
    .bind(&entry.approver_id)
    .bind(&entry.public_key)
    .bind(entry.registered_at)
    .bind(&entry.prev_hash)
    .bind(&entry.entry_hash)
    .bind(&entry.jws)
    .execute(h.store.pool())
    .await
    .unwrap();
}

/// The attacker planted a passkey and a forged registry entry for it, then approved with it through
/// the approval page (here: the decision the page would record after a valid assertion).
async fn a_forged_registry_entry_earns_no_tokens(db: Db) {
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let honest = h.approved(&creds, &jane.id).await;
    let head = h.store.key_registry().await.unwrap().pop().unwrap();
    let mut forged = KeyEntryRow {
        seq: 0,
        credential_id: "planted".into(),
        approver_id: jane.id.clone(),
        public_key: test_public_key(9),
        registered_at: h.clock.now(),
        provenance: None,
        prev_hash: head.entry_hash,
        entry_hash: String::new(),
        jws: head.jws.clone(),
    };
    forged.entry_hash = registry::entry_hash(&forged);
    insert_entry(&h, &forged).await;

    let id = h.start(&creds, APPROVER).await;
    let request = h.store.auth_request(&id).await.unwrap().unwrap();
    let nonce = vec![1u8; 32];
    let challenge = decision_challenge(
        &server::ciba::Choice::Approve,
        &request_digest(&request),
        &nonce,
    );
    let evidence = test_evidence("planted".into(), &challenge, nonce, 9, 9);
    h.server
        .ciba
        .record_decision(
            &id,
            &jane.id,
            Decision::approve_with_passkey(false),
            &evidence,
        )
        .await
        .unwrap();
    h.poll(&creds, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(
        h.store.consent_alerts().await.unwrap(),
        vec![(
            id.clone(),
            "the passkey that approved has no sealed key registry entry".to_owned()
        )]
    );
    // The honest approval still redeems.
    assert_eq!(h.poll(&creds, &honest).await.status, StatusCode::OK);
    let problems = audit_problems(&h.store).await;
    assert!(problems.contains(&(
        id.clone(),
        "the passkey that signed has no sound key registry entry".to_owned()
    )));
    assert!(
        problems
            .iter()
            .any(|(subject, problem)| subject.contains("(planted)")
                && problem == "the server's signature covers different content"),
        "a JWS copied from another entry does not cover this one: {problems:?}"
    );
}

async fn three_decisions(h: &Harness) -> Vec<String> {
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(h.approved(&creds, &jane.id).await);
    }
    ids
}

/// Runs `statements` as one intruder would: on one connection, after removing the guards. (On SQLite,
/// a DELETE on a pooled connection other than the one that dropped the trigger has once failed under
/// load with "no such table" while it reloaded the schema; the intruder's one session avoids that.)
async fn as_intruder(h: &Harness, db: Db, statements: &[&str], id: Option<&str>) {
    let mut conn = h.store.pool().acquire().await.unwrap();
    let guards: &[&str] = match db {
        Db::Sqlite => &["DROP TRIGGER decisions_no_delete"],
        Db::Postgres => &[
            "DROP TRIGGER decisions_no_change ON decisions",
            "DROP TRIGGER decisions_no_truncate ON decisions",
        ],
    };
    for statement in guards {
        sqlx::query(statement).execute(&mut *conn).await.unwrap();
    }
    for statement in statements {
        let query = sqlx::query(statement);
        let query = match id {
            Some(id) if statement.contains("$1") => query.bind(id.to_owned()),
            _ => query,
        };
        query.execute(&mut *conn).await.unwrap();
    }
}

async fn a_deleted_tail_is_shown_by_the_checkpoint(db: Db) {
    let h = Harness::new(db).await;
    let ids = three_decisions(&h).await;
    let dir = tempfile::tempdir().unwrap();
    let writer = Arc::new(h.server.ciba.checkpoints(dir.path().to_path_buf()));
    assert!(writer.write_if_moved(h.clock.now()).await.unwrap());
    assert!(
        !writer.write_if_moved(h.clock.now()).await.unwrap(),
        "nothing new, nothing written"
    );
    let latest = checkpoint::latest(dir.path()).unwrap().unwrap();
    let clean = audit_report(&h.store, Some(latest.clone())).await;
    assert!(clean.is_clean(), "{:?}", clean.findings);
    assert_eq!(clean.checkpoint.unwrap().heads.decisions.seq, 3);

    // The last record goes, with its request, so nothing else points at the gap.
    as_intruder(
        &h,
        db,
        &[
            "DELETE FROM decisions WHERE auth_req_id = $1",
            "DELETE FROM auth_requests WHERE id = $1",
        ],
        Some(&ids[2]),
    )
    .await;
    let report = audit_report(&h.store, Some(latest)).await;
    let problems: Vec<_> = report
        .findings
        .iter()
        .map(|f| (f.about.clone(), f.problem.as_str()))
        .collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, Subject::Checkpoint);
    assert!(
        problems[0]
            .1
            .starts_with("the decision record has no entry 3 although the checkpoint made at"),
        "{}",
        problems[0].1
    );
    assert!(problems[0].1.ends_with("entries were deleted (2 left)"));
    // Issue 22: and a start refuses (before, it logged and served on).
    assert_eq!(writer.compare_with_latest().await.unwrap().len(), 1);
    let refused = server::refuse_changed_evidence(&writer, dir.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("no longer hold what the latest checkpoint")
            && refused.contains("audit verify"),
        "{refused}"
    );
    // A checkpoint directory whose latest checkpoint this server did not sign stops a start too.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(
        elsewhere.path().join("latest.jws"),
        "eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
    )
    .unwrap();
    let other = h.server.ciba.checkpoints(elsewhere.path().to_path_buf());
    assert!(server::refuse_changed_evidence(&other, elsewhere.path())
        .await
        .is_err());
}

async fn an_emptied_decision_table_is_shown_by_the_checkpoint(db: Db) {
    let h = Harness::new(db).await;
    three_decisions(&h).await;
    let dir = tempfile::tempdir().unwrap();
    let writer = h.server.ciba.checkpoints(dir.path().to_path_buf());
    writer.write_if_moved(h.clock.now()).await.unwrap();
    let empty = match db {
        Db::Sqlite => "DELETE FROM decisions",
        Db::Postgres => "TRUNCATE decisions",
    };
    as_intruder(
        &h,
        db,
        &[
            empty,
            "DELETE FROM issued_tokens",
            "DELETE FROM auth_requests",
        ],
        None,
    )
    .await;
    let latest = checkpoint::latest(dir.path()).unwrap();
    let without = audit_report(&h.store, None).await;
    assert!(
        without.is_clean(),
        "without a checkpoint an emptied history looks like no history"
    );
    let report = audit_report(&h.store, latest).await;
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    assert!(report.findings[0]
        .problem
        .ends_with("entries were deleted (0 left)"));
}

/// Issue 22: a file-system writer who puts an older checkpoint back (to hide a later rollback of the
/// database) is seen: each checkpoint is numbered and names the one before, and the database records
/// what the directory was given. The server refuses to start on it, and `audit verify` says so.
async fn an_older_checkpoint_put_back_is_seen_at_start_and_by_the_audit(db: Db) {
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    h.approved(&creds, &jane.id).await;
    let dir = tempfile::tempdir().unwrap();
    let writer = h.server.ciba.checkpoints(dir.path().to_path_buf());
    assert!(writer.write_if_moved(h.clock.now()).await.unwrap());
    let older = checkpoint::latest(dir.path()).unwrap().unwrap();
    h.approved(&creds, &jane.id).await;
    assert!(writer.write_if_moved(h.clock.now()).await.unwrap());
    let newer = checkpoint::latest(dir.path()).unwrap().unwrap();
    let verify = |jws: &str| h.server.ciba.keys().verify_record(jws);
    let (first, second) = (
        checkpoint::read(&older, verify).unwrap(),
        checkpoint::read(&newer, verify).unwrap(),
    );
    assert_eq!((first.seq, first.prev.as_deref()), (1, None));
    assert_eq!(second.seq, 2);
    assert_eq!(second.prev, Some(checkpoint::jws_hash(&older)));
    assert!(writer.compare_with_latest().await.unwrap().is_empty());

    let audit = |jws: Option<String>| {
        let kek = test_kek();
        let store = h.store.clone();
        let dir = dir.path().to_path_buf();
        async move {
            let inputs = server::ciba::audit::AuditInputs {
                kek: Some(&kek),
                checkpoint: jws,
                checkpoint_dir: Some(dir),
            };
            server::ciba::audit::verify(&store, &test_rp(), inputs)
                .await
                .unwrap()
                .findings
                .into_iter()
                .map(|f| f.problem)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(audit(Some(newer.clone())).await, Vec::<String>::new());
    // The older one put back: consistent with the chains, yet not the latest written.
    std::fs::write(dir.path().join("latest.jws"), &older).unwrap();
    let problems = writer.compare_with_latest().await.unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("an older checkpoint was put back"),
        "{problems:?}"
    );
    assert!(server::refuse_changed_evidence(&writer, dir.path())
        .await
        .is_err());
    let found = audit(Some(older)).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("an older checkpoint was put back"),
        "{found:?}"
    );
    // The latest removed altogether.
    std::fs::remove_file(dir.path().join("latest.jws")).unwrap();
    let problems = writer.compare_with_latest().await.unwrap();
    assert!(
        problems[0].contains("lost its latest checkpoint"),
        "{problems:?}"
    );
    // The genuine latest back in place: all is well again.
    std::fs::write(dir.path().join("latest.jws"), &newer).unwrap();
    assert!(writer.compare_with_latest().await.unwrap().is_empty());
}
