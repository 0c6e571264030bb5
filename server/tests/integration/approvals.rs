//! The approval use-case (`ciba::approval`) without a browser: which requests an approver may decide,
//! the user code policy (CIBA §7.1 user_code), and a passkey challenge bound to exactly one decision
//! on one request. A stand-in verifier plays the passkey; the browser tests use real ones.
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use server::{
    ciba::{
        approval::{ApprovalError, Approvals, Challenge, PasskeyVerifier, Verified},
        ids::page_ref,
        record::{decision_challenge, request_digest, Evidence},
        Choice, RequestStatus,
    },
    identity::passkeys::{PasskeyError, Passkeys},
};
use webauthn_rs::prelude::PublicKeyCredential;

use crate::{common::*, on_both_databases};

on_both_databases!(
    an_approver_decides_their_own_request_once_with_a_bound_challenge,
    wrong_user_codes_are_counted_and_lock_approval_after_five,
    the_deny_reason_is_what_the_passkey_signs
);

fn deny(reason: Option<&str>) -> Choice {
    Choice::Deny {
        reason: reason.map(str::to_owned),
    }
}

/// A passkey stand-in: real webauthn-rs options around the bound challenge, which it remembers, and
/// any answer accepted.
#[derive(Default)]
struct StandIn {
    challenges: Mutex<Vec<(Vec<u8>, [u8; 32])>>,
}

#[async_trait]
impl PasskeyVerifier for StandIn {
    async fn challenge(
        &self,
        _approver_id: &str,
        bind: &(dyn for<'n> Fn(&'n [u8]) -> [u8; 32] + Send + Sync),
    ) -> Result<Option<Challenge>, PasskeyError> {
        let passkeys = Passkeys::new(&"http://localhost:3000".parse().unwrap()).unwrap();
        let bound = passkeys
            .start_bound_assertion(&[], |nonce| bind(nonce))
            .unwrap();
        let challenge = bound.options.public_key.challenge.to_vec();
        self.challenges
            .lock()
            .unwrap()
            .push((bound.nonce.clone(), challenge.try_into().expect("32 bytes")));
        Ok(Some(Challenge {
            options: bound.options,
            nonce: bound.nonce,
            state: "stand-in".into(),
        }))
    }

    async fn verify(
        &self,
        _approver_id: &str,
        _state: &str,
        _credential: &PublicKeyCredential,
    ) -> Result<Verified, PasskeyError> {
        Ok(Verified {
            evidence: Evidence {
                credential_id: "stand-in".into(),
                authenticator_data: vec![0; 37],
                client_data_json: b"{}".to_vec(),
                signature: vec![0; 64],
                nonce: Vec::new(),
                public_key: test_public_key(TEST_PASSKEY),
            },
            synced: true,
        })
    }
}

/// An assertion as a browser sends it; the stand-in does not look inside.
fn credential() -> PublicKeyCredential {
    serde_json::from_value(serde_json::json!({
        "id": "AA", "rawId": "AA", "type": "public-key", "extensions": {},
        "response": {"authenticatorData": "AA", "clientDataJSON": "AA", "signature": "AA", "userHandle": null},
    }))
    .unwrap()
}

async fn an_approver_decides_their_own_request_once_with_a_bound_challenge(db: Db) {
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let bob = h.approver("bob@example.com", None).await;
    let verifier = Arc::new(StandIn::default());
    let approvals = Approvals::new(h.server.ciba.clone(), verifier.clone());
    let id = h.start(&creds, APPROVER).await;
    let reference = page_ref(&id);

    let shown = approvals.request(&jane.id, &reference).await.unwrap();
    assert_eq!(shown.request.status(shown.now), RequestStatus::Pending);
    assert_eq!(shown.client_name, "Refund agent");
    // Someone else's request, or no request at all, looks the same: there is none.
    for (who, which) in [(&bob.id, reference.as_str()), (&jane.id, "not-a-reference")] {
        assert!(matches!(
            approvals.start(who, which, Choice::Approve, None).await,
            Err(ApprovalError::NoSuchRequest)
        ));
    }

    // The challenge commits to approving this request, with the verifier's fresh nonce.
    let (_, pending) = approvals
        .start(&jane.id, &reference, Choice::Approve, None)
        .await
        .unwrap();
    let request = h.store.auth_request(&id).await.unwrap().unwrap();
    let (nonce, challenge) = verifier.challenges.lock().unwrap()[0].clone();
    assert_eq!(
        challenge,
        decision_challenge(&Choice::Approve, &request_digest(&request), &nonce)
    );
    // An answer to the approve challenge cannot deny, and no answer comes without a challenge.
    assert!(matches!(
        approvals
            .finish(
                &jane.id,
                &reference,
                deny(None),
                Some(pending.clone()),
                &credential()
            )
            .await,
        Err(ApprovalError::OtherDecision)
    ));
    assert!(matches!(
        approvals
            .finish(&jane.id, &reference, Choice::Approve, None, &credential())
            .await,
        Err(ApprovalError::NotStarted)
    ));
    let shown = approvals
        .finish(
            &jane.id,
            &reference,
            Choice::Approve,
            Some(pending.clone()),
            &credential(),
        )
        .await
        .unwrap();
    assert_eq!(shown.request.status(shown.now), RequestStatus::Approved);
    // A synced passkey is a software key (RFC 8176 swk), and the database agrees.
    let row = h.store.auth_request_row(&id).await.unwrap().unwrap();
    assert_eq!(row.status, "approved");
    assert_eq!(row.amr.as_deref(), Some(r#"["swk","user"]"#));

    // Decided once: neither a new start nor the same answer again decides anything.
    assert!(matches!(
        approvals
            .start(&jane.id, &reference, deny(None), None)
            .await,
        Err(ApprovalError::AlreadyDecided)
    ));
    assert!(matches!(
        approvals
            .finish(
                &jane.id,
                &reference,
                Choice::Approve,
                Some(pending),
                &credential()
            )
            .await,
        Err(ApprovalError::AlreadyDecided)
    ));
    assert_eq!(h.store.decisions().await.unwrap().len(), 1);
}

async fn wrong_user_codes_are_counted_and_lock_approval_after_five(db: Db) {
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let uma = h.approver(APPROVER, Some("246810")).await;
    let approvals = Approvals::new(h.server.ciba.clone(), Arc::new(StandIn::default()));
    // The agent passes the code on (CIBA §7.1); the approver must enter it on the page too.
    let r = h
        .bc_authorize(&creds, APPROVER, &[("user_code", "246810")])
        .await;
    let id = r.json["auth_req_id"].as_str().unwrap().to_owned();
    let reference = page_ref(&id);

    assert!(matches!(
        approvals
            .start(&uma.id, &reference, Choice::Approve, None)
            .await,
        Err(ApprovalError::UserCodeMissing)
    ));
    for left in (1..=4).rev() {
        match approvals
            .start(&uma.id, &reference, Choice::Approve, Some("1111"))
            .await
        {
            Err(ApprovalError::UserCodeWrong { left: l }) => assert_eq!(l, left),
            other => panic!(
                "expected a wrong code with {left} left, got {:?}",
                other.err()
            ),
        }
    }
    assert!(matches!(
        approvals
            .start(&uma.id, &reference, Choice::Approve, Some("1111"))
            .await,
        Err(ApprovalError::UserCodeLocked)
    ));
    // The right code no longer helps, and the page is told the request is locked.
    assert!(matches!(
        approvals
            .start(&uma.id, &reference, Choice::Approve, Some("246810"))
            .await,
        Err(ApprovalError::UserCodeLocked)
    ));
    assert!(
        approvals
            .request(&uma.id, &reference)
            .await
            .unwrap()
            .user_code_locked
    );
    // Denying needs no code.
    assert!(approvals
        .start(&uma.id, &reference, deny(None), None)
        .await
        .is_ok());
}

/// The reason is given before the passkey prompt and is part of what the passkey signs, so the record
/// cannot carry another one.
async fn the_deny_reason_is_what_the_passkey_signs(db: Db) {
    let h = Harness::new(db).await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let verifier = Arc::new(StandIn::default());
    let approvals = Approvals::new(h.server.ciba.clone(), verifier.clone());
    let id = h.start(&creds, APPROVER).await;
    let reference = page_ref(&id);

    let too_long = "x".repeat(501);
    for bad in [too_long.as_str(), "line\nbreak"] {
        assert!(matches!(
            approvals
                .start(&jane.id, &reference, deny(Some(bad)), None)
                .await,
            Err(ApprovalError::BadReason)
        ));
    }
    let (_, pending) = approvals
        .start(&jane.id, &reference, deny(Some("  Wrong account  ")), None)
        .await
        .unwrap();
    let request = h.store.auth_request(&id).await.unwrap().unwrap();
    let (nonce, challenge) = verifier.challenges.lock().unwrap()[0].clone();
    assert_eq!(
        challenge,
        decision_challenge(
            &deny(Some("Wrong account")),
            &request_digest(&request),
            &nonce
        )
    );
    assert_ne!(
        challenge,
        decision_challenge(&deny(None), &request_digest(&request), &nonce)
    );
    approvals
        .finish(
            &jane.id,
            &reference,
            deny(Some("Wrong account")),
            Some(pending),
            &credential(),
        )
        .await
        .unwrap();
    let record = h.store.decisions_for(&id).await.unwrap().remove(0);
    assert_eq!(
        (record.decision.as_str(), record.reason.as_deref()),
        ("deny", Some("Wrong account"))
    );
    h.poll(&creds, &id)
        .await
        .assert_error(axum::http::StatusCode::BAD_REQUEST, "access_denied");
}
