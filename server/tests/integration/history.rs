//! The admin history's queries on both databases: every filter, the search, keyset pages, and the
//! detail page's verdict on a record, which must agree with `audit verify`.
use server::{
    admin::history::{Filters, History, HistoryError, PAGE_SIZE},
    ciba::{ids::page_ref, Decision, RequestStatus},
    clock::Clock,
};

use crate::{common::*, on_both_databases};

on_both_databases!(
    history_filters_and_searches,
    history_pages_follow_a_keyset_cursor,
    the_detail_verdict_agrees_with_the_audit,
    a_seeded_history_is_listed_and_never_passes_for_evidence,
    the_overview_counts_each_day_and_times_each_decision
);

fn history(h: &Harness) -> History {
    History::new(h.server.ciba.clone(), test_rp())
}

async fn ask(h: &Harness, creds: &Creds, email: &str, action: &str, target: &str) -> String {
    let details = serde_json::json!([{
        "type": "agent_action", "action": action, "target": target,
        "consequence": "It happens."
    }])
    .to_string();
    let r = h
        .bc_authorize(creds, email, &[("authorization_details", &details)])
        .await;
    assert_eq!(r.status, axum::http::StatusCode::OK, "{}", r.text);
    r.json["auth_req_id"].as_str().unwrap().to_owned()
}

async fn ids(h: &Harness, filters: Filters<'_>) -> Vec<String> {
    history(h)
        .page(&filters)
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|r| r.id)
        .collect()
}

async fn history_filters_and_searches(db: Db) {
    let h = Harness::new(db).await;
    let jane = h.approver(APPROVER, None).await;
    let bob = h.approver("bob@example.com", None).await;
    let refunds = h.poll_client().await;
    let deploys = h.poll_client().await;

    let expired = ask(&h, &refunds, APPROVER, "Refund 5%", "order 1").await;
    h.clock.advance_secs(400);
    let approved = ask(&h, &refunds, APPROVER, "Refund $120", "order 2").await;
    h.approve(&approved, &jane.id).await;
    h.clock.advance_secs(1);
    let denied = ask(&h, &deploys, "bob@example.com", "Deploy", "billing to PROD").await;
    decide(
        &h.server.ciba,
        &denied,
        &bob.id,
        Decision::Deny { reason: None },
    )
    .await
    .unwrap();
    h.clock.advance_secs(1);
    let pending = ask(&h, &deploys, APPROVER, "Delete", "repository legacy").await;

    // Newest first, each with where it stands now.
    let all = history(&h).page(&Filters::default()).await.unwrap();
    let order: Vec<&str> = all.entries.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(order, [&pending, &denied, &approved, &expired]);
    assert!(all.next.is_none());
    let statuses: Vec<RequestStatus> = all.entries.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            RequestStatus::Pending,
            RequestStatus::Denied,
            RequestStatus::Approved,
            RequestStatus::Expired
        ]
    );
    assert_eq!(all.entries[0].approver_email, APPROVER);
    assert_eq!(all.entries[1].target, "billing to PROD");

    let by_status = |status| Filters {
        status: Some(status),
        ..Filters::default()
    };
    assert_eq!(ids(&h, by_status("pending")).await, [pending.as_str()]);
    assert_eq!(ids(&h, by_status("expired")).await, [expired.as_str()]);
    assert_eq!(ids(&h, by_status("approved")).await, [approved.as_str()]);
    assert_eq!(ids(&h, by_status("denied")).await, [denied.as_str()]);
    // Collected tokens leave an approval approved.
    h.clock.advance_secs(6);
    assert_eq!(h.poll(&refunds, &approved).await.status, 200);
    assert_eq!(ids(&h, by_status("approved")).await, [approved.as_str()]);

    let agent = Filters {
        agent: Some(&deploys.id),
        ..Filters::default()
    };
    assert_eq!(ids(&h, agent).await, [pending.as_str(), denied.as_str()]);
    let approver = Filters {
        approver: Some(&bob.id),
        ..Filters::default()
    };
    assert_eq!(ids(&h, approver).await, [denied.as_str()]);
    let both = Filters {
        agent: Some(&refunds.id),
        status: Some("approved"),
        ..Filters::default()
    };
    assert_eq!(ids(&h, both).await, [approved.as_str()]);

    // The search: action or target, any case, and its wildcards are plain characters.
    let search = |text| Filters {
        text: Some(text),
        ..Filters::default()
    };
    assert_eq!(
        ids(&h, search("REFUND")).await,
        [approved.clone(), expired.clone()]
    );
    assert_eq!(ids(&h, search("prod")).await, [denied.as_str()]);
    assert_eq!(ids(&h, search("5%")).await, [expired.as_str()]);
    assert!(ids(&h, search("%")).await == [expired.as_str()]);
    assert!(ids(&h, search("_")).await.is_empty());
    assert!(ids(&h, search("consequence")).await.is_empty());

    // Days are UTC and inclusive; every request here was made today.
    let today = time::OffsetDateTime::from_unix_timestamp(h.clock.now() / 1000)
        .unwrap()
        .date()
        .to_string();
    let range = Filters {
        from: Some(&today),
        until: Some(&today),
        ..Filters::default()
    };
    assert_eq!(ids(&h, range).await.len(), 4);
    let before = Filters {
        until: Some("2000-01-01"),
        ..Filters::default()
    };
    assert!(ids(&h, before).await.is_empty());

    for bad in [
        by_status("won"),
        Filters {
            from: Some("yesterday"),
            ..Filters::default()
        },
        Filters {
            after: Some("not-a-reference"),
            ..Filters::default()
        },
    ] {
        assert!(matches!(
            history(&h).page(&bad).await,
            Err(HistoryError::BadFilter(_))
        ));
    }
}

async fn history_pages_follow_a_keyset_cursor(db: Db) {
    let h = Harness::with_config(db, |c| {
        c.max_pending_per_approver = 1_000;
        c.max_requests_per_minute = 1_000;
    })
    .await;
    h.approver(APPROVER, None).await;
    let creds = h.poll_client().await;
    let mut asked = Vec::new();
    for i in 0..(PAGE_SIZE + 7) {
        asked.push(ask(&h, &creds, APPROVER, &format!("Action {i}"), "t").await);
        // Two to a millisecond now and then: the cursor must break ties by id.
        if i % 3 != 0 {
            h.clock.advance_millis(1);
        }
    }
    asked.sort_by_key(|id| std::cmp::Reverse(id.clone()));
    let first = history(&h).page(&Filters::default()).await.unwrap();
    assert_eq!(first.entries.len() as i64, PAGE_SIZE);
    let next = first.next.clone().expect("a second page");
    // The cursor is the page reference, never the auth_req_id.
    assert_eq!(next, page_ref(&first.entries.last().unwrap().id));
    let second = history(&h)
        .page(&Filters {
            after: Some(&next),
            ..Filters::default()
        })
        .await
        .unwrap();
    assert_eq!(second.entries.len(), 7);
    assert!(second.next.is_none());
    let seen: Vec<String> = first
        .entries
        .iter()
        .chain(&second.entries)
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(seen, asked, "every request once, newest first");
}

async fn the_detail_verdict_agrees_with_the_audit(db: Db) {
    let h = Harness::new(db).await;
    let jane = h.approver(APPROVER, None).await;
    let creds = h.poll_client().await;
    let first = h.approved(&creds, &jane.id).await;
    let second = h.approved(&creds, &jane.id).await;
    let undecided = h.start(&creds, APPROVER).await;

    let detail = history(&h).detail(&page_ref(&second)).await.unwrap();
    assert_eq!(detail.request.id, second);
    assert_eq!(detail.records.len(), 1);
    let checks = &detail.records[0].1;
    let failed: Vec<_> = checks.iter().filter(|c| !c.problems.is_empty()).collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(checks.len(), 7, "{checks:?}");
    assert!(audit_problems(&h.store).await.is_empty());
    let none = history(&h).detail(&page_ref(&undecided)).await.unwrap();
    assert!(none.records.is_empty());
    assert!(matches!(
        history(&h)
            .detail(&page_ref("nonexistent-id-000000000000"))
            .await,
        Err(HistoryError::NotFound)
    ));

    // From below: the approved action is rewritten in the database. The page and the audit say the
    // same thing about the same record.
    sqlx::query("UPDATE auth_requests SET authorization_details = REPLACE(authorization_details, 'Refund', 'Refund 10x') WHERE id = $1")
        .bind(&first)
        .execute(h.store.pool())
        .await
        .unwrap();
    let detail = history(&h).detail(&page_ref(&first)).await.unwrap();
    let mut page_problems: Vec<&str> = detail.records[0]
        .1
        .iter()
        .flat_map(|c| c.problems.iter().copied())
        .collect();
    let mut audit: Vec<String> = audit_problems(&h.store)
        .await
        .into_iter()
        .filter(|(subject, _)| subject == &first)
        .map(|(_, problem)| problem)
        .collect();
    page_problems.sort_unstable();
    audit.sort();
    assert!(!page_problems.is_empty());
    assert_eq!(page_problems, audit);
}

async fn a_seeded_history_is_listed_and_never_passes_for_evidence(db: Db) {
    let h = Harness::new(db).await;
    let plan = server::seed::SeedPlan {
        decisions: 1_200,
        clients: 3,
        approvers: 4,
        days: 10,
    };
    let seeded = server::seed::seed(&h.store, &plan, h.clock.now(), |_| {})
        .await
        .unwrap();
    assert_eq!(seeded.requests, 1_200);
    assert_eq!(h.count_requests("1 = 1").await, 1_200);
    let now = h.clock.now();
    let first = history(&h).page(&Filters::default()).await.unwrap();
    assert_eq!(first.entries.len() as i64, PAGE_SIZE);
    assert!(first
        .entries
        .windows(2)
        .all(|w| w[0].asked_at >= w[1].asked_at));
    let denied = history(&h)
        .page(&Filters {
            status: Some("denied"),
            ..Filters::default()
        })
        .await
        .unwrap();
    assert!(denied
        .entries
        .iter()
        .all(|r| r.status == RequestStatus::Denied));
    assert!(!denied.entries.is_empty());
    // The search finds what reading every row finds, through the trigram index when the matches
    // are few (three characters or more) and by walking the history when the search is shorter.
    for text in [
        "order #1",
        "ORDER #11",
        "prod-2",
        "No Such Words",
        "#1",
        "zq",
    ] {
        let found = history(&h)
            .page(&Filters {
                text: Some(text),
                ..Filters::default()
            })
            .await
            .unwrap();
        let found: Vec<String> = found.entries.into_iter().map(|r| r.id).collect();
        let pattern = format!("%{}%", text.to_lowercase());
        let read: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM auth_requests WHERE LOWER(action_text) LIKE $1 OR LOWER(target_text) LIKE $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(pattern)
        .bind(PAGE_SIZE)
        .fetch_all(h.store.pool())
        .await
        .unwrap();
        assert_eq!(found, read, "{text}");
    }
    let search_plan = h
        .store
        .history_plan(
            &server::store::history::HistoryFilter {
                text: Some("order #11".into()),
                ..Default::default()
            },
            None,
            51,
            now,
        )
        .await
        .unwrap()
        .join("\n");
    // Few matches: the rows are picked by id (SQLite seeks the primary key; PostgreSQL's plan for
    // a table this small may read it whole, so there the id list itself is checked for).
    let picked_by_id = match h.store.backend() {
        server::store::Backend::Sqlite => "USING PRIMARY KEY (id=?)",
        server::store::Backend::Postgres => "jsonb_array_elements_text",
    };
    assert!(search_plan.contains(picked_by_id), "{search_plan}");

    // Only an empty database is seeded, and the audit reports every seeded decision: none has a record.
    assert!(server::seed::seed(&h.store, &plan, now, |_| {})
        .await
        .is_err());
    let problems = audit_problems(&h.store).await;
    assert!(problems
        .iter()
        .all(|(_, p)| p.contains("there is no decision record for it")));
    assert!(problems.len() > 1_000, "{}", problems.len());
}

async fn the_overview_counts_each_day_and_times_each_decision(db: Db) {
    let h = Harness::new(db).await;
    let jane = h.approver(APPROVER, None).await;
    let bob = h.approver("bob@example.com", None).await;
    let refunds = h.poll_client().await;
    let deploys = h.poll_client().await;
    let quick = h.start(&refunds, APPROVER).await;
    h.clock.advance_secs(10);
    h.approve(&quick, &jane.id).await;
    let slow = h.start(&deploys, "bob@example.com").await;
    h.clock.advance_secs(60);
    decide(
        &h.server.ciba,
        &slow,
        &bob.id,
        Decision::Deny { reason: None },
    )
    .await
    .unwrap();
    h.start(&refunds, APPROVER).await;
    h.clock.advance_secs(301);
    h.start(&refunds, APPROVER).await;

    let overview = server::admin::overview::overview(&h.server.ciba)
        .await
        .unwrap();
    assert_eq!(overview.days.len(), 30);
    let sum =
        |f: fn(&server::store::stats::DayCounts) -> i64| overview.days.iter().map(f).sum::<i64>();
    assert_eq!(sum(|d| d.requests), 4);
    assert_eq!(sum(|d| d.approved), 1);
    assert_eq!(sum(|d| d.denied), 1);
    assert_eq!(sum(|d| d.expired), 1);
    assert!(overview.days.windows(2).all(|w| w[0].day + 1 == w[1].day));
    // Slowest first: the deploy agent's request waited a minute for its denial.
    let agents: Vec<(usize, usize, i64)> = overview
        .agents
        .iter()
        .map(|t| (t.decided, t.approved, t.median_ms))
        .collect();
    assert_eq!(agents, [(1, 0, 60_000), (1, 1, 10_000)]);
    let approvers: Vec<(&str, i64)> = overview
        .approvers
        .iter()
        .map(|t| (t.name.as_str(), t.p90_ms))
        .collect();
    assert_eq!(approvers, [("Jane Doe", 60_000), ("Jane Doe", 10_000)]);
}
