//! Evidence bundles (`countersign audit export`, docs/evidence-bundle.md), checked by the independent
//! verifier (verify/verify-bundle.mjs, run with Node) on both databases: a complete bundle and a
//! selection verify; a request changed in the database shows in the next bundle.
use std::process::Command;

use serde_json::Value;
use server::{
    ciba::{bundle, Decision},
    clock::Clock,
    store::decisions::Selection,
};

use crate::{common::*, on_both_databases};

on_both_databases!(
    bundles_verify_independently_and_show_tampering,
    an_added_passkeys_provenance_is_verified_independently,
);

/// Runs the independent verifier on `bundle`: its exit status and its verdict.
fn verify(bundle: &Value) -> (i32, Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bundle.json");
    std::fs::write(&file, bundle.to_string()).unwrap();
    let out = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../verify/verify-bundle.mjs"
        ))
        .arg(&file)
        .arg("--json")
        .output()
        .expect("node runs the verifier");
    let verdict = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), verdict)
}

async fn export(h: &Harness, selection: Selection) -> Value {
    bundle::export(
        &h.store,
        Some(&test_kek()),
        &test_rp(),
        None,
        &selection,
        h.clock.now(),
    )
    .await
    .unwrap()
}

async fn bundles_verify_independently_and_show_tampering(db: Db) {
    let h = Harness::new(db).await;
    let jane = h.approver(APPROVER, None).await;
    let bob = h.approver("bob@example.com", None).await;
    let creds = h.poll_client().await;
    let approved = h.approved(&creds, &jane.id).await;
    let denied = h.start(&creds, APPROVER).await;
    decide(
        &h.server.ciba,
        &denied,
        &jane.id,
        Decision::Deny {
            reason: Some("Not this quarter".into()),
        },
    )
    .await
    .unwrap();
    let bobs = h.start(&creds, "bob@example.com").await;
    h.approve(&bobs, &bob.id).await;

    let all = export(&h, Selection::default()).await;
    assert_eq!(all["format"], "countersign-evidence-bundle/1");
    assert_eq!(all["complete"], true);
    assert_eq!(all["records"].as_array().unwrap().len(), 3);
    assert_eq!(all["requests"].as_object().unwrap().len(), 3);
    assert_eq!(all["relying_party"]["id"], "localhost");
    assert!(
        all["server_keys"]["keys"][0].get("d").is_none(),
        "public keys only"
    );
    let (status, verdict) = verify(&all);
    assert_eq!(verdict["problems"], serde_json::json!([]), "{verdict}");
    assert_eq!(status, 0);
    assert_eq!(verdict["signatures"], 3);

    let bobs_only = export(
        &h,
        Selection {
            approver_id: Some(bob.id.clone()),
            ..Selection::default()
        },
    )
    .await;
    assert_eq!(bobs_only["complete"], false);
    assert_eq!(bobs_only["records"][0]["auth_req_id"], bobs.as_str());
    assert_eq!(bobs_only["records"].as_array().unwrap().len(), 1);
    assert_eq!(verify(&bobs_only).0, 0);

    // From below: the approved action is changed in the database after the fact.
    sqlx::query(
        "UPDATE auth_requests SET authorization_details = REPLACE(authorization_details, 'Refund', 'Refund 10x') WHERE id = $1",
    )
    .bind(&approved)
    .execute(h.store.pool())
    .await
    .unwrap();
    let (status, verdict) = verify(&export(&h, Selection::default()).await);
    assert_eq!(status, 1);
    let problems = verdict["problems"].to_string();
    assert!(
        problems.contains("the request has changed since it was decided"),
        "{problems}"
    );
    assert!(problems.contains(&approved), "{problems}");
}

/// Issue 22: the independent verifier checks each key's provenance from the bundle alone: a passkey
/// added with an earlier passkey's authorisation verifies; an entry the server sealed with an
/// authorisation that does not cover its key vouches for nothing, and a decision it signed with it
/// is no evidence.
async fn an_added_passkeys_provenance_is_verified_independently(db: Db) {
    let h = Harness::new(db).await;
    let jane = h.approver(APPROVER, None).await;
    register_passkey(
        &h,
        &passkey_row("TGFwdG9w", &jane.id, TEST_PASSKEY),
        TEST_PASSKEY,
    )
    .await;
    let phone = new_passkey("UGhvbmU", &jane.id, 11);
    let key = test_public_key(11);
    let confirmed = addition_authorisation("TGFwdG9w", TEST_PASSKEY, &jane.id, "UGhvbmU", &key);
    h.server
        .accounts
        .add_passkey(&phone, "TGFwdG9w", confirmed, h.clock.now())
        .await
        .unwrap()
        .unwrap();
    let all = export(&h, Selection::default()).await;
    let entries = all["key_registry"].as_array().unwrap();
    let added = entries
        .iter()
        .find(|e| e["credential_id"] == "UGhvbmU")
        .unwrap();
    assert_eq!(added["provenance"]["via"], "addition");
    assert_eq!(added["provenance"]["authorised_by"], "TGFwdG9w");
    let (status, verdict) = verify(&all);
    assert_eq!(verdict["problems"], serde_json::json!([]), "{verdict}");
    assert_eq!(status, 0);

    // Sealed by the server, hashed and signed, but authorised for another key.
    seal_misauthorised_entry(&h, &jane.id, &key).await;
    let (status, verdict) = verify(&export(&h, Selection::default()).await);
    assert_eq!(status, 1, "{verdict}");
    let problems: Vec<&str> = verdict["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(problems.len(), 1, "{verdict}");
    assert!(
        problems[0].ends_with("the authorising assertion does not commit to adding this key"),
        "{verdict}"
    );
}
