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
        admin::approvers::{ApproverChangeError, Approvers},
        identity::approvers::{self, NewApprover, Role},
    };
    let h = Harness::new(db).await;
    let ada = approvers::add(
        &h.store,
        NewApprover {
            email: "ada@example.com".into(),
            name: "Ada".into(),
            role: Role::Admin,
            user_code: None,
        },
        h.clock.now(),
    )
    .await
    .unwrap();
    let jane = h.approver(APPROVER, None).await;
    let console = Approvers::new(h.server.ciba.clone(), h.server.invitations.clone());
    let admin = Admin {
        id: &ada.id,
        email: &ada.email,
    };
    // The only admin can be neither demoted nor disabled.
    assert!(matches!(
        console.set_role(&admin, &ada.id, Role::Approver).await,
        Err(ApproverChangeError::LastAdmin)
    ));
    assert!(matches!(
        console.disable(&admin, &ada.id).await,
        Err(ApproverChangeError::LastAdmin)
    ));
    console
        .set_role(&admin, &jane.id, Role::Admin)
        .await
        .unwrap();
    console
        .set_role(&admin, &ada.id, Role::Approver)
        .await
        .unwrap();
    assert!(matches!(
        console.disable(&admin, &jane.id).await,
        Err(ApproverChangeError::LastAdmin)
    ));
    let token = console
        .invite(
            &admin,
            "New.Person@Example.com",
            Some("New Person"),
            Role::Approver,
        )
        .await
        .unwrap();
    assert!(token.len() >= 40);
    assert!(matches!(
        console
            .invite(&admin, "not an address", None, Role::Approver)
            .await,
        Err(ApproverChangeError::Invalid(_))
    ));
    console
        .set_role(&admin, &ada.id, Role::Admin)
        .await
        .unwrap();
    console.disable(&admin, &jane.id).await.unwrap();
    let listed = console.list().await.unwrap();
    let jane_now = listed.iter().find(|a| a.approver.id == jane.id).unwrap();
    assert!(jane_now.approver.disabled);
    assert!(jane_now.passkeys.is_empty());
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
    use server::admin::approvers::{ApproverChangeError, Approvers};
    let h = Harness::new(db).await;
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
    let console = Approvers::new(h.server.ciba.clone(), h.server.invitations.clone());
    let listed = console.list().await.unwrap();
    let jane_listed = listed.iter().find(|a| a.approver.id == jane.id).unwrap();
    assert_eq!(jane_listed.passkeys.len(), 1);
    // An invitation would enroll whoever opens it into Jane's account: refused while she has a
    // passkey, and nothing written to the admin log.
    let logged = h.store.admin_log(100).await.unwrap().len();
    match console
        .invite(
            &ADA,
            "Jane@Example.com",
            None,
            server::identity::approvers::Role::Approver,
        )
        .await
    {
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
        console.revoke_passkey(&ADA, &jane.id, "TWFsbG9yeQ").await,
        Err(ApproverChangeError::NoSuchPasskey)
    ));
    assert!(matches!(
        console
            .revoke_passkey(&ADA, "no-such-approver", "TWFsbG9yeQ")
            .await,
        Err(ApproverChangeError::NotFound)
    ));
    // Even the last one: a lost or copied passkey must stop working.
    console
        .revoke_passkey(&ADA, &jane.id, &jane_key.credential_id)
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
}
