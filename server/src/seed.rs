//! `countersign dev seed` and `dev bench-history`: a synthetic history to develop and measure the
//! admin console against, and the history queries timed on it. Only for an empty database: seeded
//! requests have no decision records, so `audit verify` reports every one of them, and no real
//! approver or agent is ever mixed with synthetic ones.
use std::time::Instant;

use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::json;

use crate::{
    ciba::{
        clients::{self, AuthMethod, DeliveryMode, NewClient},
        ids::new_auth_req_id,
    },
    clock::Millis,
    identity::approvers::{self, NewApprover, Role},
    store::{
        history::{Cursor, HistoryFilter, HistoryStatus},
        seed::{SeedRow, SEED_ROWS_PER_INSERT},
        Store,
    },
};

pub struct SeedPlan {
    pub decisions: u64,
    pub clients: usize,
    pub approvers: usize,
    pub days: i64,
}

/// What was seeded.
pub struct Seeded {
    pub requests: u64,
    pub client_ids: Vec<String>,
    pub approver_ids: Vec<String>,
}

const ACTIONS: &[(&str, &str)] = &[
    ("Refund ${amount}", "order #{n}"),
    ("Delete repository", "repo \"service-{n}\""),
    ("Send the quarterly report", "finance-{n}@partner.example"),
    ("Scale down the cluster", "cluster \"prod-{n}\""),
    ("Rotate the API key", "service \"billing-{n}\""),
    ("Wire ${amount}", "IBAN DE89 3704 0044 0532 {n}"),
    ("Deploy to production", "build {n}"),
    ("Close the account", "customer {n}"),
];

/// Writes `plan.decisions` decided requests (and a few still pending) spread over the last
/// `plan.days` days, from `plan.clients` agents to `plan.approvers` approvers. `progress` hears the
/// running count.
pub async fn seed(
    store: &Store,
    plan: &SeedPlan,
    now: Millis,
    progress: impl Fn(u64),
) -> anyhow::Result<Seeded> {
    if store.request_count().await? > 0 {
        anyhow::bail!("dev seed only fills an empty database: this one already holds requests");
    }
    let mut rng = StdRng::seed_from_u64(7);
    let mut client_ids = Vec::new();
    // The seed agents' secrets are never shown, so they are stored under a key nobody keeps.
    let secrets = clients::ClientSecrets::new(&crate::sealing::Kek::from_bytes(
        crate::secrets::random_bytes(),
    ));
    for i in 0..plan.clients {
        let new = NewClient {
            name: format!("Seed agent {i:02}"),
            delivery_mode: DeliveryMode::Poll,
            notify_url: None,
            scopes: vec![],
            auth_method: AuthMethod::ClientSecretBasic,
            jwks: None,
            resource_server: false,
            dpop_bound: false,
        };
        client_ids.push(
            clients::register(store, &secrets, new, Default::default(), now)
                .await?
                .client_id,
        );
    }
    let mut approver_ids = Vec::new();
    for i in 0..plan.approvers {
        let new = NewApprover {
            email: format!("seed-{i:03}@seed.invalid"),
            name: format!("Seed Approver {i:03}"),
            role: Role::Approver,
            user_code: None,
        };
        approver_ids.push(approvers::add(store, new, now).await?.id);
    }
    let span = plan.days.max(1) * 86_400_000;
    let start = now - span;
    let total = plan.decisions;
    let mut batch = Vec::with_capacity(SEED_ROWS_PER_INSERT);
    for k in 0..total {
        // In time order, so every insert appends to the primary key and the history index.
        let created_at = start + (span as u128 * u128::from(k) / u128::from(total.max(1))) as i64;
        let (action, target) = ACTIONS[rng.random_range(0..ACTIONS.len())];
        let n = rng.random_range(1000..99_999);
        let amount = format!(
            "{}.{:02}",
            rng.random_range(5..5_000),
            rng.random_range(0..100)
        );
        let action = action.replace("{amount}", &amount);
        let target = target.replace("{n}", &n.to_string());
        let expires_at = created_at + 300_000;
        // Seconds to twenty minutes, mostly quick.
        let delay = (rng.random::<f64>().powi(3) * 1_200_000.0) as i64 + 3_000;
        let roll = rng.random::<f64>();
        // Still waiting (made in the last five minutes), or expired undecided.
        let (status, decided_at, deny_reason, redeemed_at) = if expires_at > now || roll < 0.06 {
            ("pending", None, None, None)
        } else if roll < 0.24 {
            let reason = (roll < 0.12).then(|| "Not without a ticket".to_owned());
            (
                "denied",
                Some(created_at + delay.min(299_000)),
                reason,
                None,
            )
        } else if roll < 0.30 {
            (
                "approved",
                Some(created_at + delay.min(299_000)),
                None,
                None,
            )
        } else {
            let decided = created_at + delay.min(299_000);
            ("redeemed", Some(decided), None, Some(decided + 1_500))
        };
        batch.push(SeedRow {
            id: new_auth_req_id(created_at),
            client_id: client_ids[rng.random_range(0..client_ids.len())].clone(),
            approver_id: approver_ids[rng.random_range(0..approver_ids.len())].clone(),
            authorization_details: json!([{
                "type": "agent_action", "action": action, "target": target,
                "consequence": "Synthetic (dev seed)."
            }])
            .to_string(),
            action_text: action,
            target_text: target,
            created_at,
            expires_at,
            status,
            decided_at,
            deny_reason,
            redeemed_at,
        });
        if batch.len() == SEED_ROWS_PER_INSERT || k + 1 == total {
            store.insert_seed_rows(&batch).await?;
            batch.clear();
            progress(k + 1);
        }
    }
    Ok(Seeded {
        requests: total,
        client_ids,
        approver_ids,
    })
}

/// One timed history query.
pub struct Timing {
    pub name: String,
    pub median_ms: f64,
    pub p99_ms: f64,
    pub rows: usize,
    pub plan: Vec<String>,
}

/// Times the history's queries as the admin pages run them (50 lines and one more), each `runs`
/// times after a warm-up: the first page, each filter alone, a search, a date range, and a page
/// far down the history.
pub async fn bench_history(store: &Store, runs: usize, now: Millis) -> anyhow::Result<Vec<Timing>> {
    let some_client: Option<String> =
        sqlx::query_scalar("SELECT client_id FROM auth_requests ORDER BY created_at DESC LIMIT 1")
            .fetch_optional(store.pool())
            .await?;
    let some_approver: Option<String> = sqlx::query_scalar(
        "SELECT approver_id FROM auth_requests ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_optional(store.pool())
    .await?;
    // Seeded targets end in a number unique to the request ("order #123456").
    let some_target: Option<String> = sqlx::query_scalar(
        "SELECT target_text FROM auth_requests ORDER BY created_at DESC LIMIT 1 OFFSET 500",
    )
    .fetch_optional(store.pool())
    .await?;
    let deep: Option<(i64, String)> = sqlx::query_as(
        "SELECT created_at, id FROM auth_requests ORDER BY created_at, id LIMIT 1 OFFSET 1000",
    )
    .fetch_optional(store.pool())
    .await?;
    let day = 86_400_000;
    let cases: Vec<(&str, HistoryFilter, Option<Cursor>)> = vec![
        ("first page", HistoryFilter::default(), None),
        (
            "status: denied",
            HistoryFilter {
                status: Some(HistoryStatus::Denied),
                ..HistoryFilter::default()
            },
            None,
        ),
        (
            "status: expired",
            HistoryFilter {
                status: Some(HistoryStatus::Expired),
                ..HistoryFilter::default()
            },
            None,
        ),
        (
            "agent",
            HistoryFilter {
                client_id: some_client.clone(),
                ..HistoryFilter::default()
            },
            None,
        ),
        (
            "approver",
            HistoryFilter {
                approver_id: some_approver.clone(),
                ..HistoryFilter::default()
            },
            None,
        ),
        (
            "agent + approver + denied",
            HistoryFilter {
                client_id: some_client,
                approver_id: some_approver,
                status: Some(HistoryStatus::Denied),
                ..HistoryFilter::default()
            },
            None,
        ),
        (
            "search: \"refund\"",
            HistoryFilter {
                text: Some("refund".into()),
                ..HistoryFilter::default()
            },
            None,
        ),
        (
            "search with no match",
            HistoryFilter {
                text: Some("no such words".into()),
                ..HistoryFilter::default()
            },
            None,
        ),
        (
            "search: one target",
            HistoryFilter {
                text: some_target,
                ..HistoryFilter::default()
            },
            None,
        ),
        (
            "search: 2 characters, no match",
            HistoryFilter {
                text: Some("zq".into()),
                ..HistoryFilter::default()
            },
            None,
        ),
        (
            "one day, 30 days ago",
            HistoryFilter {
                from: Some(now - 30 * day),
                until: Some(now - 29 * day),
                ..HistoryFilter::default()
            },
            None,
        ),
        (
            "a page 1,000 from the oldest",
            HistoryFilter::default(),
            deep.map(|(created_at, id)| Cursor { created_at, id }),
        ),
    ];
    let mut timings = Vec::new();
    for (name, filter, after) in cases {
        let mut rows = 0;
        let mut samples = Vec::with_capacity(runs);
        for run in 0..runs + 2 {
            let started = Instant::now();
            rows = store.history(&filter, after.as_ref(), 51, now).await?.len();
            // The first two runs warm the caches.
            if run >= 2 {
                samples.push(started.elapsed().as_secs_f64() * 1000.0);
            }
        }
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
        timings.push(Timing {
            name: name.to_owned(),
            median_ms: at(0.5),
            p99_ms: at(0.99),
            rows,
            plan: store.history_plan(&filter, after.as_ref(), 51, now).await?,
        });
    }
    Ok(timings)
}
