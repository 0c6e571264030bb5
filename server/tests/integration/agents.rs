//! Agents and approvers kept from the admin console (`admin::agents`, `admin::approvers`) on both
//! databases: registering, rotating a secret, changing delivery and scopes, disabling and enabling;
//! inviting, promoting, revoking passkeys and offboarding; each written to the admin log, which the
//! database keeps append-only; and each agent's last 30 days.
use axum::http::StatusCode;
use server::{
    admin::agents::{Admin, Agents},
    ciba::{
        clients::{ClientError, NewClient, Settings},
        AuthMethod, DeliveryMode,
    },
    clock::Clock,
};

use crate::{common::*, on_both_databases};

on_both_databases!(
    admins_keep_agents_and_the_log_remembers,
    an_agents_delivery_changes_and_earlier_requests_keep_theirs,
    a_revoked_passkey_signs_in_no_more_and_its_decisions_still_verify
);

async fn admins_keep_agents_and_the_log_remembers(db: Db) {
    let h = Harness::new(db).await;
    let jane = h.approver(APPROVER, None).await;
    let agents = Agents::new(h.server.ciba.clone(), Default::default());
    let ada = Admin {
        id: "admin-1",
        email: "ada@example.com",
    };
    let new = NewClient {
        name: "Billing agent".into(),
        delivery_mode: DeliveryMode::Poll,
        notify_url: None,
        scopes: vec!["email".into()],
        auth_method: AuthMethod::ClientSecretBasic,
        jwks: None,
        resource_server: false,
        dpop_bound: true,
    };
    let first = agents.register(&ada, new.clone()).await.unwrap();
    let creds = Creds {
        id: first.client_id.clone(),
        secret: first.client_secret.clone().unwrap(),
    };
    h.server.ciba.refresh().await.unwrap();
    let id = h.approved(&creds, &jane.id).await;
    h.bc_authorize(&creds, APPROVER, &[]).await;

    let listed = agents.get(&creds.id).await.unwrap().unwrap();
    assert_eq!(listed.client.name, "Billing agent");
    assert_eq!(listed.client.dpop_bound, 1);
    assert_eq!(
        (
            listed.counts.requests,
            listed.counts.approved,
            listed.counts.denied
        ),
        (2, 1, 0)
    );
    assert!(matches!(
        agents
            .register(
                &ada,
                NewClient {
                    name: " ".into(),
                    ..new
                }
            )
            .await,
        Err(ClientError::Invalid(_))
    ));

    // A rotated secret replaces the old one; a disabled agent cannot authenticate.
    let rotated = agents.rotate_secret(&ada, &creds.id).await.unwrap();
    h.server.ciba.refresh().await.unwrap();
    h.bc_authorize(&creds, APPROVER, &[])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    let creds = Creds {
        secret: rotated.client_secret.unwrap(),
        ..creds
    };
    assert_eq!(
        h.bc_authorize(&creds, APPROVER, &[]).await.status,
        StatusCode::OK
    );
    assert!(agents.set_disabled(&ada, &creds.id, true).await.unwrap());
    h.server.ciba.refresh().await.unwrap();
    h.poll(&creds, &id)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(agents.set_disabled(&ada, &creds.id, false).await.unwrap());
    assert!(!agents
        .set_disabled(&ada, "no-such-agent", true)
        .await
        .unwrap());

    let log = h.store.admin_log(10).await.unwrap();
    let entries: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e.action.as_str(), e.subject.as_str()))
        .collect();
    assert_eq!(
        entries,
        [
            ("enabled an agent", creds.id.as_str()),
            ("disabled an agent", creds.id.as_str()),
            ("rotated an agent's secret", creds.id.as_str()),
            ("registered an agent", creds.id.as_str()),
        ]
    );
    assert!(log.iter().all(|e| e.admin_email == "ada@example.com"));
    assert_eq!(
        log[3].detail.as_deref(),
        Some("Billing agent: poll delivery, DPoP required")
    );
    // From below: the log cannot be rewritten or emptied.
    for sql in [
        "UPDATE admin_log SET admin_email = 'someone@else.example'",
        "DELETE FROM admin_log",
    ] {
        assert!(
            sqlx::query(sql).execute(h.store.pool()).await.is_err(),
            "{sql}"
        );
    }
    assert_eq!(h.store.admin_log(10).await.unwrap().len(), 4);
}

on_both_databases!(admins_keep_approvers_and_one_admin_always_remains);

async fn admins_keep_approvers_and_one_admin_always_remains(db: Db) {
    use server::{
        admin::{
            approvers::{ApproverChangeError, Done},
            confirmation::Change,
        },
        identity::approvers::{self, Role},
    };
    let h = Harness::new(db).await;
    let ada = admin_with_passkey(&h, "ada@example.com").await;
    let jane = h.approver(APPROVER, None).await;
    let console = approvers_console(&h);
    let change = |c: Change| confirmed_change(&console, &ada, c);
    // The only admin can be neither demoted nor disabled.
    assert!(matches!(
        change(Change::Demote {
            approver: ada.id.clone()
        })
        .await,
        Err(ApproverChangeError::LastAdmin)
    ));
    assert!(matches!(
        change(Change::Disable {
            approver: ada.id.clone()
        })
        .await,
        Err(ApproverChangeError::LastAdmin)
    ));
    change(Change::Promote {
        approver: jane.id.clone(),
    })
    .await
    .unwrap();
    change(Change::Demote {
        approver: ada.id.clone(),
    })
    .await
    .unwrap();
    // Ada is no admin now, but her confirmation is still checked as hers: the console refuses
    // non-admins before this, and her passkey still signs as Ada.
    let invited = change(Change::Invite {
        email: "New.Person@Example.com".into(),
        name: Some("New Person".into()),
        admin: false,
    })
    .await
    .unwrap();
    match invited {
        Done::Invited { email, token } => {
            assert_eq!(email, "new.person@example.com");
            assert!(token.len() >= 40);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        change(Change::Invite {
            email: "not an address".into(),
            name: None,
            admin: false
        })
        .await,
        Err(ApproverChangeError::Invalid(_))
    ));
    change(Change::Promote {
        approver: ada.id.clone(),
    })
    .await
    .unwrap();
    change(Change::Disable {
        approver: jane.id.clone(),
    })
    .await
    .unwrap();
    let listed = console.list().await.unwrap();
    let jane_now = listed.iter().find(|a| a.approver.id == jane.id).unwrap();
    assert!(jane_now.approver.disabled);
    assert!(jane_now.passkeys.is_empty());
    assert_eq!(
        approvers::by_id(&h.store, &jane.id)
            .await
            .unwrap()
            .unwrap()
            .role,
        Role::Admin
    );
    let log: Vec<(String, String)> = h
        .store
        .admin_log(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.subject))
        .collect();
    let expected = [
        ("disabled an approver", APPROVER),
        ("made an approver an admin", "ada@example.com"),
        ("invited an approver", "new.person@example.com"),
        ("made an admin an approver only", "ada@example.com"),
        ("made an approver an admin", APPROVER),
    ];
    assert_eq!(
        log,
        expected.map(|(a, s)| (a.to_owned(), s.to_owned())).to_vec()
    );
}

on_both_databases!(a_change_to_who_can_approve_needs_the_admins_passkey_over_that_change);

/// Issue 22: a session alone changes nothing. Each change to who can approve takes a user-verified
/// assertion of the admin's own passkey whose challenge commits to the admin and that very change;
/// anything else is refused with nothing written, and the log entry keeps the confirmation.
async fn a_change_to_who_can_approve_needs_the_admins_passkey_over_that_change(db: Db) {
    use server::admin::{approvers::ApproverChangeError, confirmation::Change};
    let h = Harness::new(db).await;
    let ada = admin_with_passkey(&h, "ada@example.com").await;
    let jane = h.approver(APPROVER, None).await;
    let jane_key = passkey_row(&test_credential(&jane.id), &jane.id, TEST_PASSKEY);
    register_passkey(&h, &jane_key, TEST_PASSKEY).await;
    let mallory = h.approver("mallory@example.com", None).await;
    let console = approvers_console(&h);
    let who = Admin {
        id: &ada.id,
        email: &ada.email,
    };
    let promote = |id: &str| Change::Promote {
        approver: id.to_owned(),
    };
    let ada_key = test_credential(&ada.id);
    let refusals = [
        (
            "a confirmation of another change (promoting Jane, replayed for Mallory)",
            server::admin::confirmation::Confirmation {
                change: promote(&mallory.id),
                ..confirmation(&ada.id, &ada_key, ADMIN_PASSKEY, promote(&jane.id))
            },
        ),
        (
            "another approver's passkey",
            confirmation(
                &ada.id,
                &jane_key.credential_id,
                TEST_PASSKEY,
                promote(&mallory.id),
            ),
        ),
        (
            "a signature by another key",
            confirmation(&ada.id, &ada_key, 99, promote(&mallory.id)),
        ),
        (
            "a confirmation made for another admin",
            confirmation(&jane.id, &ada_key, ADMIN_PASSKEY, promote(&mallory.id)),
        ),
    ];
    for (what, refused) in refusals {
        match console.confirm(&who, &refused).await {
            Err(ApproverChangeError::NotConfirmed(_)) => {}
            other => panic!("{what}: {other:?}"),
        }
    }
    assert!(h.store.admin_log(10).await.unwrap().is_empty());
    let mallory_now = server::identity::approvers::by_id(&h.store, &mallory.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        mallory_now.role,
        server::identity::approvers::Role::Approver
    );

    // A suspended passkey confirms nothing either.
    h.store
        .suspend_passkey(&ada_key, "test", h.clock.now())
        .await
        .unwrap();
    let genuine = confirmation(&ada.id, &ada_key, ADMIN_PASSKEY, promote(&mallory.id));
    assert!(matches!(
        console.confirm(&who, &genuine).await,
        Err(ApproverChangeError::NotConfirmed(_))
    ));
    sqlx::query("UPDATE passkeys SET suspended_at = NULL, suspended_reason = NULL")
        .execute(h.store.pool())
        .await
        .unwrap();
    console.confirm(&who, &genuine).await.unwrap();
    let log = h.store.admin_log(10).await.unwrap();
    assert_eq!(log.len(), 1);
    let kept: server::admin::confirmation::Confirmation =
        serde_json::from_str(log[0].authorisation.as_deref().unwrap()).unwrap();
    assert_eq!(kept, genuine);
    assert_eq!(
        audit_problems(&h.store).await,
        Vec::<(String, String)>::new()
    );

    // A database writer can extend the unkeyed chain, but cannot sign as Ada: an entry appended
    // with a made-up confirmation is named by the audit.
    let forged =
        serde_json::to_string(&confirmation(&ada.id, &ada_key, 99, promote(&jane.id))).unwrap();
    h.store
        .append_admin_log(
            &server::store::admin_log::AdminEntry {
                at: h.clock.now(),
                admin_id: &ada.id,
                admin_email: &ada.email,
                action: "made an approver an admin",
                subject: APPROVER,
                detail: None,
                authorisation: Some(&forged),
            },
            server::admin::log::entry_hash,
        )
        .await
        .unwrap();
    let problems = audit_problems(&h.store).await;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].0.starts_with("admin log entry "),
        "{problems:?}"
    );
    assert_eq!(problems[0].1, "the passkey signature does not verify");
}

const ADA: Admin<'static> = Admin {
    id: "admin-1",
    email: "ada@example.com",
};

async fn outbox_rows(h: &Harness, auth_req_id: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM notification_outbox WHERE auth_req_id = $1 AND channel = 'client'",
    )
    .bind(auth_req_id)
    .fetch_one(h.store.pool())
    .await
    .unwrap()
}

async fn an_agents_delivery_changes_and_earlier_requests_keep_theirs(db: Db) {
    let h = Harness::new(db).await;
    let jane = h.approver(APPROVER, None).await;
    let agents = Agents::new(h.server.ciba.clone(), Default::default());
    let creds = h.poll_client().await;
    let made_polling = h.start(&creds, APPROVER).await;

    let ping = Settings {
        delivery_mode: DeliveryMode::Ping,
        notify_url: Some("https://agent.example/cb".into()),
        scopes: vec!["email".into(), "profile".into(), "email".into()],
    };
    agents
        .change_settings(&ADA, &creds.id, &ping)
        .await
        .unwrap();
    let row = h.store.client(&creds.id).await.unwrap().unwrap();
    assert_eq!(
        (
            row.delivery_mode.as_str(),
            row.notify_url.as_deref(),
            row.scopes.as_str()
        ),
        (
            "ping",
            Some("https://agent.example/cb"),
            "openid email profile"
        )
    );

    // Refused as at registration, and nothing changes.
    let refused = [
        Settings {
            notify_url: None,
            ..ping.clone()
        },
        Settings {
            delivery_mode: DeliveryMode::Poll,
            ..ping.clone()
        },
        Settings {
            notify_url: Some("http://agent.example/cb".into()),
            ..ping.clone()
        },
        Settings {
            scopes: vec!["admin".into()],
            ..ping.clone()
        },
    ];
    for settings in refused {
        assert!(
            matches!(
                agents.change_settings(&ADA, &creds.id, &settings).await,
                Err(ClientError::Invalid(_))
            ),
            "{settings:?}"
        );
    }
    assert!(matches!(
        agents.change_settings(&ADA, "no-such-agent", &ping).await,
        Err(ClientError::NotFound(_))
    ));
    let after = h.store.client(&creds.id).await.unwrap().unwrap();
    assert_eq!(
        (after.delivery_mode, after.updated_at),
        (row.delivery_mode, row.updated_at)
    );

    // CIBA §10.2: the request made in poll mode carries no notification token, so it is not
    // pinged (the client could not check the ping); it is redeemed by polling as before.
    h.server.ciba.refresh().await.unwrap();
    h.approve(&made_polling, &jane.id).await;
    assert_eq!(outbox_rows(&h, &made_polling).await, 0);
    assert_eq!(h.poll(&creds, &made_polling).await.status, StatusCode::OK);

    // A request made in ping mode now needs the token (§7.1) and is pinged.
    h.bc_authorize(&creds, APPROVER, &[])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    let answer = h
        .bc_authorize(
            &creds,
            APPROVER,
            &[("client_notification_token", "ping-token-0123456789")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let made_pinging = answer.json["auth_req_id"].as_str().unwrap().to_owned();
    h.approve(&made_pinging, &jane.id).await;
    assert_eq!(outbox_rows(&h, &made_pinging).await, 1);

    // Scopes taken away are refused from the next request on (CIBA §13: invalid_scope).
    let poll_only = Settings {
        delivery_mode: DeliveryMode::Poll,
        notify_url: None,
        scopes: Vec::new(),
    };
    agents
        .change_settings(&ADA, &creds.id, &poll_only)
        .await
        .unwrap();
    h.server.ciba.refresh().await.unwrap();
    h.bc_authorize(&creds, APPROVER, &[])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_scope");

    let log = h.store.admin_log(10).await.unwrap();
    assert_eq!(log.len(), 2, "refusals are not logged");
    let log = &log[1..];
    assert_eq!(
        (log[0].action.as_str(), log[0].detail.as_deref()),
        (
            "changed an agent's settings",
            Some("ping delivery to https://agent.example/cb; scopes openid email profile")
        )
    );
}

async fn a_revoked_passkey_signs_in_no_more_and_its_decisions_still_verify(db: Db) {
    use server::admin::{approvers::ApproverChangeError, confirmation::Change};
    let h = Harness::new(db).await;
    let ada = admin_with_passkey(&h, "ada@example.com").await;
    let jane = h.approver(APPROVER, None).await;
    let mallory = h.approver("mallory@example.com", None).await;
    let accounts = h.server.accounts.clone();
    let jane_key = passkey_row(&test_credential(&jane.id), &jane.id, TEST_PASSKEY);
    register_passkey(&h, &jane_key, TEST_PASSKEY).await;
    let mallory_key = passkey_row("TWFsbG9yeQ", &mallory.id, 9);
    register_passkey(&h, &mallory_key, 9).await;
    let creds = h.poll_client().await;
    let redeemed = h.approved(&creds, &jane.id).await;
    assert_eq!(h.poll(&creds, &redeemed).await.status, StatusCode::OK);
    let approved = h.approved(&creds, &jane.id).await;

    assert!(accounts
        .passkey(&jane_key.credential_id)
        .await
        .unwrap()
        .is_some());
    let console = approvers_console(&h);
    let change = |c: Change| confirmed_change(&console, &ada, c);
    let invite_jane = || Change::Invite {
        email: "Jane@Example.com".into(),
        name: None,
        admin: false,
    };
    let revoke = |approver: &str, credential: &str| Change::RevokePasskey {
        approver: approver.into(),
        credential: credential.into(),
    };
    let listed = console.list().await.unwrap();
    let jane_listed = listed.iter().find(|a| a.approver.id == jane.id).unwrap();
    assert_eq!(jane_listed.passkeys.len(), 1);
    // An invitation would enroll whoever opens it into Jane's account: refused while she has a
    // passkey, and nothing written to the admin log.
    let logged = h.store.admin_log(100).await.unwrap().len();
    match change(invite_jane()).await {
        Err(ApproverChangeError::Invalid(why)) => {
            assert!(why.contains("already has a passkey"), "{why}");
        }
        other => panic!(
            "an invitation for an enrolled approver: {:?}",
            other.map(|_| ())
        ),
    }
    assert_eq!(h.store.admin_log(100).await.unwrap().len(), logged);

    // Only the approver's own passkey can be revoked through their line.
    assert!(matches!(
        change(revoke(&jane.id, "TWFsbG9yeQ")).await,
        Err(ApproverChangeError::NoSuchPasskey)
    ));
    assert!(matches!(
        change(revoke("no-such-approver", "TWFsbG9yeQ")).await,
        Err(ApproverChangeError::NotFound)
    ));
    // Even the last one: a lost or copied passkey must stop working.
    change(revoke(&jane.id, &jane_key.credential_id))
        .await
        .unwrap();
    assert!(accounts
        .passkey(&jane_key.credential_id)
        .await
        .unwrap()
        .is_none());
    assert!(accounts.passkey("TWFsbG9yeQ").await.unwrap().is_some());

    // What it signed before still verifies; an approval of its not yet redeemed is withdrawn with it
    // (issue 22: revocation withdraws), so a copied passkey's last approvals earn nothing.
    assert_eq!(
        audit_problems(&h.store).await,
        Vec::<(String, String)>::new()
    );
    let answer = h.poll(&creds, &approved).await;
    answer.assert_error(StatusCode::BAD_REQUEST, "access_denied");
    assert!(
        answer.description().contains("revoked or suspended"),
        "{}",
        answer.description()
    );
    let log = h.store.admin_log(10).await.unwrap();
    assert_eq!(
        (
            log[0].action.as_str(),
            log[0].subject.as_str(),
            log[0].detail.as_deref()
        ),
        ("revoked a passkey", APPROVER, Some("\"Phone\""))
    );

    // Issue 22: with her passkeys revoked, a fresh invitation would let one admin revoke and
    // re-enroll her. Refused: getting back in is a recovery, which a second admin approves.
    let logged = h.store.admin_log(100).await.unwrap().len();
    match change(invite_jane()).await {
        Err(ApproverChangeError::Invalid(why)) => {
            assert!(why.contains("has had a passkey"), "{why}");
        }
        other => panic!(
            "an invitation after revoking every passkey: {:?}",
            other.map(|_| ())
        ),
    }
    assert_eq!(h.store.admin_log(100).await.unwrap().len(), logged);
    let invitations: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM invitations")
        .fetch_one(h.store.pool())
        .await
        .unwrap();
    assert_eq!(invitations, 0);
}

on_both_databases!(the_admin_log_is_a_hash_chain_the_checkpoint_covers);

/// Issue 22: the admin log is a hash chain whose head the checkpoint names, so an entry edited or a
/// tail deleted beneath the append-only triggers is seen by `audit verify` and at start.
async fn the_admin_log_is_a_hash_chain_the_checkpoint_covers(db: Db) {
    use server::{
        admin::confirmation::Change,
        ciba::{audit::Subject, checkpoint},
    };
    let h = Harness::new(db).await;
    let ada = admin_with_passkey(&h, "ada@example.com").await;
    let jane = h.approver(APPROVER, None).await;
    let console = approvers_console(&h);
    let invite = |email: &str| Change::Invite {
        email: email.into(),
        name: None,
        admin: false,
    };
    for change in [
        invite("new.person@example.com"),
        Change::Promote {
            approver: jane.id.clone(),
        },
        invite("another@example.com"),
    ] {
        confirmed_change(&console, &ada, change).await.unwrap();
    }
    let log = h.store.admin_log_chain().await.unwrap();
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|e| e.entry_hash.is_some()));
    assert_eq!(log[1].prev_hash, log[0].entry_hash);

    let dir = tempfile::tempdir().unwrap();
    let writer = h.server.ciba.checkpoints(dir.path().to_path_buf());
    assert!(writer.write_if_moved(h.clock.now()).await.unwrap());
    let latest = checkpoint::latest(dir.path()).unwrap().unwrap();
    let clean = audit_report(&h.store, Some(latest.clone())).await;
    assert!(clean.is_clean(), "{:?}", clean.findings);
    assert_eq!(clean.checkpoint.unwrap().heads.admin_log.seq, log[2].seq);

    // A writer beneath the triggers rewrites who was made an admin, and removes the last entry.
    let mut conn = h.store.pool().acquire().await.unwrap();
    let guards: &[&str] = match db {
        Db::Sqlite => &[
            "DROP TRIGGER admin_log_no_update",
            "DROP TRIGGER admin_log_no_delete",
        ],
        Db::Postgres => &["DROP TRIGGER admin_log_no_change ON admin_log"],
    };
    for statement in guards {
        sqlx::query(statement).execute(&mut *conn).await.unwrap();
    }
    sqlx::query("UPDATE admin_log SET subject = 'mallory@example.com' WHERE seq = $1")
        .bind(log[1].seq)
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("DELETE FROM admin_log WHERE seq = $1")
        .bind(log[2].seq)
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let report = audit_report(&h.store, Some(latest)).await;
    let findings: Vec<_> = report
        .findings
        .iter()
        .map(|f| (f.about.clone(), f.problem.clone()))
        .collect();
    assert_eq!(findings.len(), 2, "{findings:?}");
    assert_eq!(
        findings[0],
        (
            Subject::AdminLogEntry { seq: log[1].seq },
            "the entry's content does not match its hash".to_owned()
        )
    );
    assert_eq!(findings[1].0, Subject::Checkpoint);
    assert!(
        findings[1].1.starts_with(&format!(
            "the admin log has no entry {} although the checkpoint",
            log[2].seq
        )),
        "{}",
        findings[1].1
    );
    // The server sees the shortened log at start too.
    let at_start = writer.compare_with_latest().await.unwrap();
    assert_eq!(at_start.len(), 1, "{at_start:?}");
    assert!(
        at_start[0].starts_with("the admin log no longer holds entry"),
        "{}",
        at_start[0]
    );
}

on_both_databases!(
    a_recovery_needs_a_second_admin_and_ends_the_old_passkeys,
    a_recovery_any_admin_cancels_is_never_approved
);

/// Issue 22: someone who lost every passkey is recovered, never re-invited: one admin starts it, a
/// second approves it (each with their passkey), and only then do the old passkeys end and a
/// single-use link, valid an hour, enroll a new one. With one admin, the operator's command is named.
async fn a_recovery_needs_a_second_admin_and_ends_the_old_passkeys(db: Db) {
    use server::{
        admin::{
            approvers::{ApproverChangeError, Done},
            confirmation::Change,
        },
        identity::{
            accounts::{Enrolling, Enrollment},
            provenance::Provenance,
            registry::NewKey,
        },
    };
    let (url, mut mails) = crate::notify::smtp_sink().await;
    let h = Harness::with_config(db, |c| c.smtp_url = Some(url)).await;
    let ada = admin_with_passkey(&h, "ada@example.com").await;
    let jane = h.approver(APPROVER, None).await;
    let jane_key = passkey_row(&test_credential(&jane.id), &jane.id, TEST_PASSKEY);
    register_passkey(&h, &jane_key, TEST_PASSKEY).await;
    let creds = h.poll_client().await;
    let approved = h.approved(&creds, &jane.id).await;
    let console = approvers_console(&h);
    let start = Change::StartRecovery {
        approver: jane.id.clone(),
    };
    let refusal = |outcome: Result<Done, ApproverChangeError>| match outcome {
        Err(ApproverChangeError::Invalid(why)) => why,
        other => panic!("{other:?}"),
    };
    let why = refusal(confirmed_change(&console, &ada, start.clone()).await);
    assert!(
        why.contains("countersign approver recover --email jane@example.com"),
        "{why}"
    );

    let bob = admin_with_passkey(&h, "bob@example.com").await;
    confirmed_change(&console, &ada, start.clone())
        .await
        .unwrap();
    let why = refusal(confirmed_change(&console, &ada, start).await);
    assert!(why.contains("already waiting"), "{why}");
    let open = console.open_recoveries().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].started_by, "ada@example.com");
    let approve = Change::ApproveRecovery {
        recovery: open[0].id.clone(),
    };
    let why = refusal(confirmed_change(&console, &ada, approve.clone()).await);
    assert!(why.starts_with("You started this recovery"), "{why}");
    // Nothing ends before the second admin approves.
    let accounts = &h.server.accounts;
    assert!(accounts
        .passkey(&jane_key.credential_id)
        .await
        .unwrap()
        .is_some());

    let token = match confirmed_change(&console, &bob, approve.clone()).await {
        Ok(Done::Recovered { email, token }) => {
            assert_eq!(email, APPROVER);
            token
        }
        other => panic!("{other:?}"),
    };
    let why = refusal(confirmed_change(&console, &bob, approve).await);
    assert!(why.contains("approved already"), "{why}");
    assert!(accounts
        .passkey(&jane_key.credential_id)
        .await
        .unwrap()
        .is_none());
    h.poll(&creds, &approved)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "access_denied");
    let log = h.store.admin_log(10).await.unwrap();
    assert_eq!(
        log.iter()
            .map(|e| (e.action.as_str(), e.admin_email.as_str()))
            .collect::<Vec<_>>(),
        [
            ("approved a recovery", "bob@example.com"),
            ("started a recovery", "ada@example.com")
        ]
    );
    // Jane is told (the request's own notice may come first).
    let told = async {
        loop {
            let mail = mails.recv().await.expect("the sink is open");
            if mail.contains("Subject: Your Countersign account is being recovered") {
                return mail;
            }
        }
    };
    let mail = tokio::time::timeout(std::time::Duration::from_secs(10), told)
        .await
        .expect("the recovery notice within 10 s");
    assert!(mail.contains(&format!("RCPT TO:<{APPROVER}>")), "{mail}");

    // The link: an hour, once, into Jane's own account, with the recovery as the key's provenance.
    let link = h.server.invitations.find(&token).await.unwrap().unwrap();
    assert_eq!(link.expires_at - link.created_at, 3_600_000);
    assert_eq!(link.recovery_id.as_deref(), Some(open[0].id.as_str()));
    assert_eq!(
        accounts
            .check_person(
                &server::identity::invitations::Invitation::of(link.clone()),
                APPROVER
            )
            .await
            .unwrap(),
        Ok(())
    );
    let jane_account = server::identity::accounts::NewAccount {
        id: jane.id.clone(),
        email: APPROVER.into(),
        name: jane.name.clone(),
        role: server::identity::approvers::Role::Approver,
    };
    let new_key = new_passkey("TmV3S2V5", &jane.id, 8);
    let provenance = Provenance::Recovery {
        invitation: link.id.clone().unwrap(),
        recovery: open[0].id.clone(),
        started_by: Some(ada.id.clone()),
        approved_by: Some(bob.id.clone()),
    };
    let enrolling = |passkey| Enrolling {
        token_hash: &link.token_hash,
        approver: &jane_account,
        create: false,
        passkey,
        provenance: &provenance,
    };
    assert_eq!(
        accounts
            .enroll(enrolling(&new_key), h.clock.now())
            .await
            .unwrap(),
        Enrollment::Enrolled
    );
    // Used once: a second passkey through it is refused, and nothing is written.
    let used = h.server.invitations.find(&token).await.unwrap().unwrap();
    assert!(used.used_at.is_some());
    let another = new_passkey("QWdhaW4", &jane.id, 9);
    let again = enrolling(&another);
    assert_eq!(
        accounts.enroll(again, h.clock.now()).await.unwrap(),
        Enrollment::HasPasskey
    );
    assert!(h.store.passkey("QWdhaW4").await.unwrap().is_none());
    assert_eq!(
        audit_problems(&h.store).await,
        Vec::<(String, String)>::new()
    );

    // A key sealed as arriving through a recovery no second admin approved vouches for nothing.
    let claimed = Provenance::Recovery {
        invitation: "made-up".into(),
        recovery: "made-up".into(),
        started_by: Some(ada.id.clone()),
        approved_by: Some(bob.id.clone()),
    };
    h.server
        .ciba
        .key_registry()
        .register(&NewKey {
            credential_id: "UGxhbnRlZA",
            approver_id: &jane.id,
            public_key: &test_public_key(12),
            registered_at: 0,
            provenance: Some(&claimed),
        })
        .await
        .unwrap();
    let problems = audit_problems(&h.store).await;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0]
            .1
            .starts_with("the recovery it arrived through has no approval"),
        "{problems:?}"
    );
}

/// A second admin who suspects the recovery they are asked to approve declines it: cancelled (with
/// their passkey, in the admin log), it is no longer open, can never be approved, changes nothing of
/// the person's passkeys, and they are told.
async fn a_recovery_any_admin_cancels_is_never_approved(db: Db) {
    use server::admin::{
        approvers::{ApproverChangeError, Done},
        confirmation::Change,
    };
    let (url, mut mails) = crate::notify::smtp_sink().await;
    let h = Harness::with_config(db, |c| c.smtp_url = Some(url)).await;
    let ada = admin_with_passkey(&h, "ada@example.com").await;
    let bob = admin_with_passkey(&h, "bob@example.com").await;
    let jane = h.approver(APPROVER, None).await;
    let jane_key = passkey_row(&test_credential(&jane.id), &jane.id, TEST_PASSKEY);
    register_passkey(&h, &jane_key, TEST_PASSKEY).await;
    let console = approvers_console(&h);
    let start = Change::StartRecovery {
        approver: jane.id.clone(),
    };
    confirmed_change(&console, &ada, start).await.unwrap();
    let open = console.open_recoveries().await.unwrap();
    let cancel = Change::CancelRecovery {
        recovery: open[0].id.clone(),
    };
    assert!(matches!(
        confirmed_change(&console, &bob, cancel.clone()).await,
        Ok(Done::Changed)
    ));
    assert!(console.open_recoveries().await.unwrap().is_empty());
    let refusal = |outcome: Result<Done, ApproverChangeError>| match outcome {
        Err(ApproverChangeError::Invalid(why)) => why,
        other => panic!("{other:?}"),
    };
    let approve = Change::ApproveRecovery {
        recovery: open[0].id.clone(),
    };
    let why = refusal(confirmed_change(&console, &bob, approve).await);
    assert!(why.contains("approved or cancelled already"), "{why}");
    let why = refusal(confirmed_change(&console, &ada, cancel).await);
    assert!(why.contains("cancelled already"), "{why}");
    let row = h.store.recovery(&open[0].id).await.unwrap().unwrap();
    assert_eq!(row.cancelled_by.as_deref(), Some(bob.id.as_str()));
    assert_eq!(row.approved_at, None);
    assert!(h
        .server
        .accounts
        .passkey(&jane_key.credential_id)
        .await
        .unwrap()
        .is_some());
    let log = h.store.admin_log(10).await.unwrap();
    assert_eq!(
        log.iter()
            .map(|e| (e.action.as_str(), e.admin_email.as_str()))
            .collect::<Vec<_>>(),
        [
            ("cancelled a recovery", "bob@example.com"),
            ("started a recovery", "ada@example.com")
        ]
    );
    assert_eq!(
        audit_problems(&h.store).await,
        Vec::<(String, String)>::new()
    );
    let told = async {
        loop {
            let mail = mails.recv().await.expect("the sink is open");
            if mail.contains("Subject: The recovery of your Countersign account was cancelled") {
                return mail;
            }
        }
    };
    let mail = tokio::time::timeout(std::time::Duration::from_secs(10), told)
        .await
        .expect("the cancellation notice within 10 s");
    assert!(mail.contains(&format!("RCPT TO:<{APPROVER}>")), "{mail}");
}
