//! The decision record: one append-only row per decision, hash-chained and signed by the server, and
//! `countersign audit verify`'s checks that find any tampering.
use server::ciba::{audit, Decision};

use crate::{common::*, on_both_databases};

on_both_databases!(
    decisions_form_a_verifiable_chain,
    tampering_is_detected,
    a_record_the_passkey_did_not_sign_is_detected
);

/// Asserts that the audit reported `problem` for the request `id`.
fn found(problems: &[(String, String)], id: &str, problem: &str) {
    assert!(
        problems.contains(&(id.to_owned(), problem.to_owned())),
        "{id}: {problem}, in {problems:?}"
    );
}

async fn three_decisions(h: &Harness) -> Vec<String> {
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = h.start(&creds, APPROVER).await;
        let decision = if i == 1 {
            Decision::Deny {
                reason: Some("wrong order".into()),
            }
        } else {
            Decision::approve_with_passkey(false)
        };
        decide(&h.server.ciba, &id, &jane.id, decision)
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

async fn decisions_form_a_verifiable_chain(db: Db) {
    let h = Harness::new(db).await;
    let ids = three_decisions(&h).await;
    let rows = h.store.decisions().await.unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].prev_hash, server::store::decisions::GENESIS_HASH);
    assert_eq!(rows[1].prev_hash, rows[0].record_hash);
    assert_eq!(rows[2].prev_hash, rows[1].record_hash);
    assert_eq!(
        rows.iter()
            .map(|r| r.auth_req_id.clone())
            .collect::<Vec<_>>(),
        ids
    );
    assert_eq!(
        (rows[1].decision.as_str(), rows[1].reason.as_deref()),
        ("deny", Some("wrong order"))
    );
    // The server's JWS carries the record and verifies against its key.
    let claims = h
        .server
        .ciba
        .keys()
        .verify(&rows[0].jws, server::ciba::record::RECORD_JWS_TYPE)
        .unwrap();
    assert_eq!(claims["record_hash"], rows[0].record_hash.as_str());
    let report = audit_report(&h.store, None).await;
    assert_eq!(report.records, 3);
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!(
        (report.signatures_verified, report.signatures_unchecked),
        (3, 0),
        "each passkey signature is checked against the recorded key"
    );
    assert_eq!(
        rows[0].credential_public_key.as_deref(),
        Some(test_public_key(TEST_PASSKEY).as_str())
    );
    // The evidence tables refuse edits and deletions, and on PostgreSQL a TRUNCATE (which fires no
    // row trigger) as well.
    let mut refused = vec![
        "UPDATE decisions SET reason = 'edited'",
        "DELETE FROM decisions",
        "UPDATE key_registry SET public_key = 'x'",
        "DELETE FROM key_registry",
    ];
    if db == Db::Postgres {
        refused.extend([
            "TRUNCATE decisions",
            "TRUNCATE passkey_keys",
            "TRUNCATE key_registry",
        ]);
    }
    for statement in refused {
        let error = sqlx::query(statement)
            .execute(h.store.pool())
            .await
            .expect_err(statement);
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
    assert_eq!(h.server.ciba.store().decisions().await.unwrap().len(), 3);
}

async fn tampering_is_detected(db: Db) {
    let h = Harness::new(db).await;
    let ids = three_decisions(&h).await;
    // Someone with database access removes the guard and rewrites a denial as an approval...
    let drop = match db {
        Db::Sqlite => "DROP TRIGGER decisions_no_update",
        Db::Postgres => "DROP TRIGGER decisions_no_change ON decisions",
    };
    sqlx::query(drop).execute(h.store.pool()).await.unwrap();
    // (dropping the passkey key too, so its signature cannot be checked)...
    sqlx::query("UPDATE decisions SET decision = 'approve', reason = NULL, credential_public_key = NULL WHERE auth_req_id = $1")
        .bind(&ids[1])
        .execute(h.store.pool())
        .await
        .unwrap();
    // ...and widens what the first approval covered.
    sqlx::query("UPDATE auth_requests SET binding_message = 'changed' WHERE id = $1")
        .bind(&ids[0])
        .execute(h.store.pool())
        .await
        .unwrap();
    let problems = audit_problems(&h.store).await;
    found(
        &problems,
        &ids[1],
        "the record's content does not match its hash",
    );
    found(
        &problems,
        &ids[1],
        "the server's signature covers different content",
    );
    found(
        &problems,
        &ids[0],
        "the request has changed since it was decided",
    );
    found(
        &problems,
        &ids[1],
        "the record keeps no passkey public key, unlike earlier ones",
    );
    assert!(
        !problems.iter().any(|(id, _)| id == &ids[2]),
        "the untouched record is fine: {problems:?}"
    );
}

/// A server (or anyone with its signing key and the database) could write a whole record, chain and
/// JWS included; only the approver's passkey can make the signature. WebAuthn §7.2 steps 20-21.
async fn a_record_the_passkey_did_not_sign_is_detected(db: Db) {
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let honest = h.approved(&creds, &jane.id).await;
    let forged = h.start(&creds, APPROVER).await;
    decide_signed(
        &h.server.ciba,
        &forged,
        &jane.id,
        Decision::approve_with_passkey(false),
        9,
        TEST_PASSKEY,
    )
    .await
    .unwrap();
    let report = audit_report(&h.store, None).await;
    let problems: Vec<(String, String)> = report
        .findings
        .iter()
        .map(|f| (f.auth_req_id().unwrap().to_owned(), f.problem.clone()))
        .collect();
    assert_eq!(
        problems,
        vec![(forged, "the passkey signature does not verify".to_owned())],
        "the chain and the server's JWS are intact; only the signature gives it away"
    );
    assert_eq!(report.signatures_verified, 1);

    // A forger who signs with their own key and records it is caught by the key registry.
    let own_key = h.start(&creds, APPROVER).await;
    decide_signed(
        &h.server.ciba,
        &own_key,
        &jane.id,
        Decision::approve_with_passkey(false),
        9,
        9,
    )
    .await
    .unwrap();
    let report = audit_report(&h.store, None).await;
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.auth_req_id() == Some(&own_key)
                && f.problem
                    == "the recorded public key is not the one registered for this passkey"),
        "{:?}",
        report.findings
    );
    assert!(report
        .findings
        .iter()
        .all(|f| f.auth_req_id() != Some(&own_key) || !f.problem.contains("signature")));
    // The registry itself is append-only.
    assert!(sqlx::query("UPDATE key_registry SET public_key = 'x'")
        .execute(h.store.pool())
        .await
        .is_err());

    // Assertions made for another site do not count either.
    let elsewhere = audit::RelyingParty::of(&"https://countersign.example".parse().unwrap());
    let report = audit::verify(&h.store, &elsewhere, Default::default())
        .await
        .unwrap();
    assert!(report
        .findings
        .iter()
        .any(|f| f.auth_req_id() == Some(&honest)
            && f.problem
                .starts_with("the passkey assertion was made for another site (rpIdHash")));
}
