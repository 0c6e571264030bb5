//! Requests to a group of approvers, and approval policies that ask for several people (issue 23):
//! who may address a group, who may decide, first-decision-wins for a group, and a quorum of
//! distinct people whose records alone mint tokens.
use std::sync::Arc;

use async_trait::async_trait;
use axum::http::StatusCode;
use server::clock::Clock;
use server::{
    admin::confirmation::Change,
    ciba::{
        approval::{Approvals, Challenge, PasskeyVerifier, Verified},
        Decision, DecisionError,
    },
    identity::{
        approvers::{self, Approver},
        passkeys::PasskeyError,
    },
};
use webauthn_rs::prelude::PublicKeyCredential;

use crate::{common::*, on_both_databases};

on_both_databases!(
    a_group_request_reaches_every_member_and_the_first_decision_wins,
    an_agent_addresses_only_the_groups_it_was_allowed,
    a_two_person_policy_needs_two_different_people,
    any_denial_denies_a_quorum,
    a_downgraded_policy_earns_no_tokens,
    a_policy_its_group_cannot_meet_refuses_the_request,
    a_delegate_decides_during_the_period_on_behalf_of_the_approver,
    a_delegate_never_gets_a_second_say_in_a_quorum,
    an_open_request_escalates_to_another_group_once_its_time_has_passed
);

const HOUR_MS: i64 = 60 * 60 * 1000;

const GROUP: &str = "payments-oncall";

/// Asks for and confirms `change` as `admin`, which must succeed.
async fn change(h: &Harness, admin: &Approver, change: Change) {
    confirmed_change(&approvers_console(h), admin, change)
        .await
        .unwrap();
}

/// An admin, a group of `members` (new approvers, by e-mail) and the poll agent allowed to address
/// it; returns the agent, the members, the group's id and the admin.
async fn group_of(h: &Harness, members: &[&str]) -> (Creds, Vec<Approver>, String, Approver) {
    let admin = admin_with_passkey(h, "ada@example.com").await;
    let creds = h.poll_client().await;
    change(h, &admin, Change::CreateGroup { name: GROUP.into() }).await;
    let group = h.store.group_by_name(GROUP).await.unwrap().unwrap().id;
    let mut people = Vec::new();
    for email in members {
        let person = h.approver(email, None).await;
        let add = Change::AddToGroup {
            group: group.clone(),
            approver: person.id.clone(),
        };
        change(h, &admin, add).await;
        people.push(person);
    }
    let allow = Change::AllowGroup {
        agent: creds.id.clone(),
        group: group.clone(),
    };
    change(h, &admin, allow).await;
    (creds, people, group, admin)
}

/// A request to the group, asserting it is accepted.
async fn to_group(h: &Harness, creds: &Creds) -> String {
    h.start(creds, &format!("group:{GROUP}")).await
}

/// A payment of `amount` EUR as `authorization_details`.
fn payment(amount: &str) -> String {
    serde_json::json!([{
        "type": "agent_action",
        "action": "Pay supplier invoice",
        "target": "ACME Ltd, invoice 77",
        "consequence": "The money leaves the company account.",
        "amount": amount,
        "currency": "EUR",
    }])
    .to_string()
}

/// A payment of `amount` EUR asked of Jane, asserting it is accepted.
async fn ask_payment(h: &Harness, creds: &Creds, amount: &str) -> String {
    let details = payment(amount);
    let r = h
        .bc_authorize(creds, APPROVER, &[("authorization_details", &details)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json["auth_req_id"].as_str().unwrap().to_owned()
}

fn approve() -> Decision {
    Decision::approve_with_passkey(false)
}

/// A verifier nobody asks: the inbox needs none.
struct NoPasskeys;

#[async_trait]
impl PasskeyVerifier for NoPasskeys {
    async fn challenge(
        &self,
        _approver_id: &str,
        _bind: &(dyn for<'n> Fn(&'n [u8]) -> [u8; 32] + Send + Sync),
    ) -> Result<Option<Challenge>, PasskeyError> {
        Ok(None)
    }

    async fn verify(
        &self,
        _approver_id: &str,
        _state: &str,
        _credential: &PublicKeyCredential,
    ) -> Result<Verified, PasskeyError> {
        unreachable!("no decision is made through this verifier")
    }
}

async fn pending_for(h: &Harness, approver: &Approver) -> usize {
    Approvals::new(h.server.ciba.clone(), Arc::new(NoPasskeys))
        .inbox(&approver.id)
        .await
        .unwrap()
        .pending
        .len()
}

async fn a_group_request_reaches_every_member_and_the_first_decision_wins(db: Db) {
    let h = Harness::new(db).await;
    let (creds, members, group, _) = group_of(
        &h,
        &["ann@example.com", "bob@example.com", "cy@example.com"],
    )
    .await;
    let outsider = h.approver("eve@example.com", None).await;
    let id = to_group(&h, &creds).await;
    // Copied when made: every member is an addressee, and it waits in each of their inboxes.
    let row = h.store.auth_request_row(&id).await.unwrap().unwrap();
    assert_eq!(
        (row.approver_id, row.group_id.as_deref()),
        (None, Some(group.as_str()))
    );
    let (addressees,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM request_addressees WHERE auth_req_id = $1")
            .bind(&id)
            .fetch_one(h.store.pool())
            .await
            .unwrap();
    assert_eq!(addressees, 3);
    for member in &members {
        assert_eq!(pending_for(&h, member).await, 1, "{}", member.email);
    }
    assert_eq!(pending_for(&h, &outsider).await, 0);
    assert!(matches!(
        decide(&h.server.ciba, &id, &outsider.id, approve()).await,
        Err(DecisionError::NotYours)
    ));
    // Each member's passkey is registered before the race, so only the decisions contend.
    for member in &members {
        let row = passkey_row(&test_credential(&member.id), &member.id, TEST_PASSKEY);
        register_passkey(&h, &row, TEST_PASSKEY).await;
    }
    // A hundred decisions at once, from all three: exactly one is recorded.
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (ciba, id, member) = (h.server.ciba.clone(), id.clone(), members[i % 3].id.clone());
        let decision = if i % 2 == 0 {
            approve()
        } else {
            Decision::Deny { reason: None }
        };
        tasks.push(tokio::spawn(async move {
            decide(&ciba, &id, &member, decision).await
        }));
    }
    let mut won = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(row) => won.push(row),
            Err(DecisionError::AlreadyDecided) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one decision wins");
    let records = h.store.decisions_for(&id).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].group_id.as_deref(), Some(group.as_str()));
    assert_eq!(records[0].approver_id, won[0].approver_id);
    for member in &members {
        assert_eq!(pending_for(&h, member).await, 0, "settled for everyone");
    }
    // The console's decision times count it as its decider's.
    let times = h.store.decision_times(0).await.unwrap();
    assert_eq!(times.len(), 1);
    assert_eq!(times[0].approver_id, records[0].approver_id);
    let poll = h.poll(&creds, &id).await;
    if records[0].decision == "approve" {
        assert_eq!(poll.status, StatusCode::OK, "{}", poll.text);
        let token = claims(poll.json["access_token"].as_str().unwrap());
        assert_eq!(token["sub"], records[0].approver_id.as_str(), "the decider");
    } else {
        poll.assert_error(StatusCode::BAD_REQUEST, "access_denied");
    }
    assert!(audit_problems(&h.store).await.is_empty());
}

async fn an_agent_addresses_only_the_groups_it_was_allowed(db: Db) {
    let h = Harness::new(db).await;
    group_of(&h, &["ann@example.com"]).await;
    let other = h
        .client(
            server::ciba::DeliveryMode::Poll,
            server::ciba::AuthMethod::ClientSecretBasic,
        )
        .await;
    // CIBA §13: a hint that names nobody this agent may ask is unknown_user_id, whether the
    // group exists or not.
    for hint in [format!("group:{GROUP}"), "group:no-such-group".to_owned()] {
        let r = h.bc_authorize(&other, &hint, &[]).await;
        r.assert_error(StatusCode::BAD_REQUEST, "unknown_user_id");
    }
    assert_eq!(h.count_requests("1 = 1").await, 0, "nothing stored");
}

/// A group of Ann, Bob and Jane, and a policy for the agent: payments over 1,000 need two
/// approvals by the group's members.
async fn two_person_rule(h: &Harness) -> (Creds, Vec<Approver>) {
    let (creds, members, group, admin) = group_of(
        h,
        &["ann@example.com", "bob@example.com", "jane@example.com"],
    )
    .await;
    let policy = Change::SetPolicy {
        policy: None,
        name: "Payments over 1,000".into(),
        agent: Some(creds.id.clone()),
        action: None,
        tool: None,
        amount_above: Some("1000".into()),
        irreversible: false,
        approvals: 2,
        group: Some(group),
        escalate_after_mins: None,
        escalation_group: None,
    };
    change(h, &admin, policy).await;
    (creds, members)
}

async fn a_two_person_policy_needs_two_different_people(db: Db) {
    let h = Harness::new(db).await;
    let (creds, members) = two_person_rule(&h).await;
    let (ann, bob, jane) = (&members[0], &members[1], &members[2]);
    // A small payment is not covered: Jane alone decides it, as before.
    let small_id = ask_payment(&h, &creds, "1000.00").await;
    let small_row = h.store.auth_request_row(&small_id).await.unwrap().unwrap();
    assert_eq!(small_row.policy, None);
    // A big one, which the agent asks for on Jane's behalf: two others of the group must approve.
    let id = ask_payment(&h, &creds, "5000.00").await;
    let request = h.store.auth_request(&id).await.unwrap().unwrap();
    let rule = request.rule.clone().unwrap();
    assert_eq!((rule.approvals, rule.version), (2, 1));
    assert_eq!(request.approver_id.as_deref(), Some(jane.id.as_str()));
    assert!(
        !request.is_addressed_to(&jane.id),
        "nobody approves their own request"
    );
    // The rule is part of what every passkey signs.
    let statement = server::ciba::record::request_statement(&request);
    assert_eq!(statement["policy"]["approvals"], 2);
    assert!(matches!(
        decide(&h.server.ciba, &id, &jane.id, approve()).await,
        Err(DecisionError::NotYours)
    ));
    decide(&h.server.ciba, &id, &ann.id, approve())
        .await
        .unwrap();
    let row = h.store.auth_request_row(&id).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.approvals), ("partly_approved", 1));
    // CIBA §11: the agent keeps waiting.
    h.poll(&creds, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "authorization_pending");
    // Ann again, with another of her passkeys: one person counts once.
    let second = "ann-second-passkey";
    register_passkey(&h, &passkey_row(second, &ann.id, 9), 9).await;
    let digest =
        server::ciba::record::request_digest(&h.store.auth_request(&id).await.unwrap().unwrap());
    let nonce = server::secrets::random_bytes::<32>().to_vec();
    let challenge = server::ciba::record::decision_challenge(&approve().choice(), &digest, &nonce);
    let evidence = test_evidence(second.into(), &challenge, nonce, 9, 9);
    assert!(matches!(
        h.server
            .ciba
            .record_decision(&id, &ann.id, approve(), &evidence)
            .await,
        Err(DecisionError::AlreadyDecided)
    ));
    h.clock.advance_secs(6);
    h.poll(&creds, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "authorization_pending");
    decide(&h.server.ciba, &id, &bob.id, approve())
        .await
        .unwrap();
    h.clock.advance_secs(6);
    let tokens = h.poll(&creds, &id).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    let at = claims(tokens.json["access_token"].as_str().unwrap());
    assert_eq!(at["sub"], jane.id.as_str(), "the person the agent acts for");
    let records = h.store.decisions_for(&id).await.unwrap();
    let hashes: Vec<&str> = records.iter().map(|r| r.record_hash.as_str()).collect();
    assert_eq!(at["countersign_approvals"], serde_json::json!(hashes));
    assert_eq!(at["countersign_decision"], hashes[1]);
    assert!(audit_problems(&h.store).await.is_empty());
}

async fn any_denial_denies_a_quorum(db: Db) {
    let h = Harness::new(db).await;
    let (creds, members) = two_person_rule(&h).await;
    let id = ask_payment(&h, &creds, "2500").await;
    decide(&h.server.ciba, &id, &members[0].id, approve())
        .await
        .unwrap();
    let no = Decision::Deny {
        reason: Some("not this supplier".into()),
    };
    decide(&h.server.ciba, &id, &members[1].id, no)
        .await
        .unwrap();
    let row = h.store.auth_request_row(&id).await.unwrap().unwrap();
    assert_eq!(row.status, "denied");
    h.poll(&creds, &id)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "access_denied");
    assert!(matches!(
        decide(&h.server.ciba, &id, &members[0].id, approve()).await,
        Err(DecisionError::AlreadyDecided)
    ));
    assert!(audit_problems(&h.store).await.is_empty());
}

async fn a_downgraded_policy_earns_no_tokens(db: Db) {
    let h = Harness::new(db).await;
    let (creds, members) = two_person_rule(&h).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = ask_payment(&h, &creds, "9000").await;
        decide(&h.server.ciba, &id, &members[0].id, approve())
            .await
            .unwrap();
        ids.push(id);
    }
    // A database writer lowers the first request's rule to one approval and marks it approved…
    let one = r#"{"policy":"x","version":1,"approvals":1}"#;
    sqlx::query(
        "UPDATE auth_requests SET policy = $1, status = 'approved', decided_at = 1 WHERE id = $2",
    )
    .bind(one)
    .bind(&ids[0])
    .execute(h.store.pool())
    .await
    .unwrap();
    // …and the second one approved, its rule untouched.
    sqlx::query("UPDATE auth_requests SET status = 'approved', decided_at = 1 WHERE id = $1")
        .bind(&ids[1])
        .execute(h.store.pool())
        .await
        .unwrap();
    // As after a lost notification channel, or on another instance: the store is asked.
    h.server.ciba.distrust_poll_cache();
    for id in &ids {
        h.poll(&creds, id)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let mut alerts = h.store.consent_alerts().await.unwrap();
    alerts.sort();
    let mut expected = vec![
        (
            ids[0].clone(),
            "the request has changed since it was decided".to_owned(),
        ),
        (
            ids[1].clone(),
            "fewer distinct people approved than the request's policy asks for".to_owned(),
        ),
    ];
    expected.sort();
    assert_eq!(alerts, expected);
    let problems = audit_problems(&h.store).await;
    assert!(
        problems.iter().any(|(id, p)| id == &ids[1]
            && p == "marked approved with approvals by 1 people, and its policy asks for 2"),
        "{problems:?}"
    );
}

async fn a_policy_its_group_cannot_meet_refuses_the_request(db: Db) {
    let h = Harness::new(db).await;
    let (creds, _members) = two_person_rule(&h).await;
    // Two of the three members are disabled: only one other than Jane could approve.
    approvers_disable(&h, "bob@example.com").await;
    let big = payment("5000");
    let r = h
        .bc_authorize(&creds, APPROVER, &[("authorization_details", &big)])
        .await;
    r.assert_error(StatusCode::FORBIDDEN, "access_denied");
    assert!(
        r.description().contains("asks for 2 approvals"),
        "{}",
        r.text
    );
    assert_eq!(h.count_requests("policy IS NOT NULL").await, 0);
}

async fn approvers_disable(h: &Harness, email: &str) {
    h.store
        .disable_approver(email, h.clock.now())
        .await
        .unwrap()
        .unwrap();
}

async fn a_delegate_decides_during_the_period_on_behalf_of_the_approver(db: Db) {
    let h = Harness::new(db).await;
    let admin = admin_with_passkey(&h, "ada@example.com").await;
    let creds = h.poll_client().await;
    let jane = h.approver(APPROVER, None).await;
    let dan = h.approver("dan@example.com", None).await;
    let starts_at = h.clock.now() + HOUR_MS;
    let away = Change::Delegate {
        approver: jane.id.clone(),
        delegate: dan.id.clone(),
        starts_at,
        ends_at: starts_at + HOUR_MS,
    };
    change(&h, &admin, away).await;
    // Before the period: Jane's own, as ever.
    let before = h.start(&creds, APPROVER).await;
    let row = h.store.auth_request_row(&before).await.unwrap().unwrap();
    assert_eq!(
        (row.approver_id.as_deref(), row.shared),
        (Some(jane.id.as_str()), 0)
    );
    // During it (the clock moved, never slept on): Dan decides, on Jane's behalf.
    h.clock.advance_millis(HOUR_MS + 1_000);
    let during = h.start(&creds, APPROVER).await;
    let request = h.store.auth_request(&during).await.unwrap().unwrap();
    assert_eq!(request.addressees, vec![dan.id.clone()]);
    assert_eq!(request.on_behalf_of(&dan.id), Some(jane.id.as_str()));
    assert_eq!(pending_for(&h, &dan).await, 1);
    assert_eq!(pending_for(&h, &jane).await, 0, "Jane is away");
    assert!(matches!(
        decide(&h.server.ciba, &during, &jane.id, approve()).await,
        Err(DecisionError::NotYours)
    ));
    let record = decide(&h.server.ciba, &during, &dan.id, approve())
        .await
        .unwrap();
    assert_eq!(
        (record.approver_id.as_str(), record.on_behalf_of.as_deref()),
        (dan.id.as_str(), Some(jane.id.as_str()))
    );
    let tokens = h.poll(&creds, &during).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    let at = claims(tokens.json["access_token"].as_str().unwrap());
    assert_eq!(at["sub"], jane.id.as_str(), "the agent acted for Jane");
    // After it: Jane's again.
    h.clock.advance_millis(HOUR_MS);
    let after = h.start(&creds, APPROVER).await;
    let row = h.store.auth_request_row(&after).await.unwrap().unwrap();
    assert_eq!(row.shared, 0);
    assert!(audit_problems(&h.store).await.is_empty());
}

async fn a_delegate_never_gets_a_second_say_in_a_quorum(db: Db) {
    let h = Harness::new(db).await;
    let (creds, members) = two_person_rule(&h).await;
    let (ann, bob) = (&members[0], &members[1]);
    let admin = approvers::by_email(&h.store, "ada@example.com")
        .await
        .unwrap()
        .unwrap();
    let now = h.clock.now();
    let away = Change::Delegate {
        approver: ann.id.clone(),
        delegate: bob.id.clone(),
        starts_at: now,
        ends_at: now + HOUR_MS,
    };
    change(&h, &admin, away).await;
    // Ann hands over to Bob, who is asked anyway: he would be both approvers, so only one person
    // can approve and the two-person rule cannot be met.
    let big = payment("5000");
    let r = h
        .bc_authorize(&creds, APPROVER, &[("authorization_details", &big)])
        .await;
    r.assert_error(StatusCode::FORBIDDEN, "access_denied");
    assert!(r.description().contains("only 1 can approve"), "{}", r.text);
}

async fn an_open_request_escalates_to_another_group_once_its_time_has_passed(db: Db) {
    let h = Harness::new(db).await;
    let (creds, members, oncall, admin) = group_of(&h, &["ann@example.com"]).await;
    change(
        &h,
        &admin,
        Change::CreateGroup {
            name: "managers".into(),
        },
    )
    .await;
    let managers = h.store.group_by_name("managers").await.unwrap().unwrap().id;
    let max = h.approver("max@example.com", None).await;
    let add = Change::AddToGroup {
        group: managers.clone(),
        approver: max.id.clone(),
    };
    change(&h, &admin, add).await;
    let policy = Change::SetPolicy {
        policy: None,
        name: "Restarts".into(),
        agent: Some(creds.id.clone()),
        action: None,
        tool: None,
        amount_above: None,
        irreversible: false,
        approvals: 1,
        group: Some(oncall),
        escalate_after_mins: Some(10),
        escalation_group: Some(managers.clone()),
    };
    change(&h, &admin, policy).await;
    // Half an hour to decide (CIBA §7.1 requested_expiry); after ten minutes the managers are asked.
    let hint = format!("group:{GROUP}");
    let r = h
        .bc_authorize(&creds, &hint, &[("requested_expiry", "1800")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = r.json["auth_req_id"].as_str().unwrap().to_owned();
    // The escalation is part of what is signed.
    let request = h.store.auth_request(&id).await.unwrap().unwrap();
    let statement = server::ciba::record::request_statement(&request);
    assert_eq!(
        statement["policy"]["escalation"],
        serde_json::json!({"after_secs": 600, "group": managers})
    );
    assert!(matches!(
        decide(&h.server.ciba, &id, &max.id, approve()).await,
        Err(DecisionError::NotYours)
    ));
    // The clock is moved, never slept on: not yet at 599 s, then once.
    h.clock.advance_secs(599);
    assert_eq!(h.server.ciba.escalate_due().await.unwrap(), 0);
    assert_eq!(pending_for(&h, &max).await, 0);
    h.clock.advance_secs(2);
    assert_eq!(h.server.ciba.escalate_due().await.unwrap(), 1);
    assert_eq!(h.server.ciba.escalate_due().await.unwrap(), 0, "once");
    assert_eq!(pending_for(&h, &max).await, 1);
    assert_eq!(pending_for(&h, &members[0]).await, 1, "still asked");
    decide(&h.server.ciba, &id, &max.id, approve())
        .await
        .unwrap();
    let tokens = h.poll(&creds, &id).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    assert!(audit_problems(&h.store).await.is_empty());
}
