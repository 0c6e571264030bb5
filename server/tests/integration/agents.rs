//! Agents kept from the admin console (`admin::agents`) on both databases: registering, rotating a
//! secret, disabling and enabling, each written to the admin log, which the database keeps
//! append-only; and each agent's last 30 days.
use axum::http::StatusCode;
use server::{
    admin::agents::{Admin, Agents},
    ciba::{clients::NewClient, AuthMethod, DeliveryMode},
    clock::Clock,
};

use crate::{common::*, on_both_databases};

on_both_databases!(admins_keep_agents_and_the_log_remembers);

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
        Err(server::ciba::clients::ClientError::Invalid(_))
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
    let console = Approvers::new(h.server.ciba.clone());
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
    assert_eq!(jane_now.passkeys, 0);
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
