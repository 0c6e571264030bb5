//! The history at a glance: requests, approvals and denials per day, and how fast each agent's
//! requests and each approver's decisions went (median and 90th percentile), over the last 30 days.
use std::{collections::HashMap, sync::Arc};

use crate::{
    ciba::Ciba,
    clock::Millis,
    identity::approvers,
    store::{
        stats::{DayCounts, DecisionTime},
        StoreError,
    },
};

/// How far back the overview looks.
pub const DAYS: i64 = 30;
const DAY_MS: Millis = 86_400_000;

pub struct Overview {
    /// Every day of the window, oldest first (days without requests hold zeros).
    pub days: Vec<DayCounts>,
    pub agents: Vec<Timing>,
    pub approvers: Vec<Timing>,
}

/// How fast one agent's requests, or one approver's decisions, were decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    pub name: String,
    pub decided: usize,
    pub approved: usize,
    pub median_ms: Millis,
    pub p90_ms: Millis,
}

pub async fn overview(ciba: &Arc<Ciba>) -> Result<Overview, StoreError> {
    let store = ciba.store();
    let now = ciba.now();
    let first_day = now.div_euclid(DAY_MS) - (DAYS - 1);
    let since = first_day * DAY_MS;
    let counted: HashMap<i64, DayCounts> = store
        .daily_counts(since, now)
        .await?
        .into_iter()
        .map(|d| (d.day, d))
        .collect();
    let days = (first_day..first_day + DAYS)
        .map(|day| {
            counted.get(&day).cloned().unwrap_or(DayCounts {
                day,
                requests: 0,
                approved: 0,
                denied: 0,
                expired: 0,
            })
        })
        .collect();
    let times = store.decision_times(since).await?;
    let client_names: HashMap<String, String> = store
        .clients()
        .await?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    let approver_names: HashMap<String, String> = approvers::list(store)
        .await?
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect();
    Ok(Overview {
        days,
        agents: timings(&times, |t| &t.client_id, &client_names),
        approvers: timings(&times, |t| &t.approver_id, &approver_names),
    })
}

/// The decision times grouped by `key`, slowest median first.
fn timings<'a>(
    times: &'a [DecisionTime],
    key: impl Fn(&'a DecisionTime) -> &'a String,
    names: &HashMap<String, String>,
) -> Vec<Timing> {
    let mut groups: HashMap<&String, Vec<&DecisionTime>> = HashMap::new();
    for time in times {
        groups.entry(key(time)).or_default().push(time);
    }
    let mut out: Vec<Timing> = groups
        .into_iter()
        .map(|(id, group)| {
            let mut millis: Vec<Millis> = group.iter().map(|t| t.millis).collect();
            millis.sort_unstable();
            Timing {
                name: names.get(id).cloned().unwrap_or_else(|| id.clone()),
                decided: group.len(),
                approved: group.iter().filter(|t| t.approved == 1).count(),
                median_ms: percentile(&millis, 50),
                p90_ms: percentile(&millis, 90),
            }
        })
        .collect();
    out.sort_by(|a, b| b.median_ms.cmp(&a.median_ms).then(a.name.cmp(&b.name)));
    out
}

/// The nearest-rank percentile `p` of sorted `values` (0 when empty).
fn percentile(sorted: &[Millis], p: usize) -> Millis {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<Millis> = (1..=10).collect();
        assert_eq!(percentile(&values, 50), 5);
        assert_eq!(percentile(&values, 90), 9);
        assert_eq!(percentile(&[7], 90), 7);
        assert_eq!(percentile(&[], 50), 0);
    }
}
