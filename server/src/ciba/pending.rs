//! Poll state in memory. A pending request's poll answers (`authorization_pending`, `slow_down`,
//! `expired_token`, `invalid_grant` for another client) come from here without touching the database;
//! only a decided request goes to the store. Decisions made by this instance mark entries decided at
//! once; decisions made by another instance arrive over PostgreSQL NOTIFY on `DECISION_CHANNEL`. The
//! `slow_down` bookkeeping is deliberately not durable: losing it on restart only forgives one fast poll.
use std::{
    collections::{HashMap, HashSet},
    sync::{Mutex, RwLock},
};

use super::auth_request::AuthRequest;
use crate::clock::Millis;

/// PostgreSQL channel of decisions; each payload is `<auth_req_id> <addressee>…`.
pub const DECISION_CHANNEL: &str = "countersign_decisions";
/// PostgreSQL channel of new requests; each payload is the approver's id.
pub const INBOX_CHANNEL: &str = "countersign_inbox";

/// CIBA §11: each `slow_down` adds five seconds to the interval the client must keep.
const SLOW_DOWN_STEP_MS: Millis = 5_000;

#[derive(Debug)]
struct Entry {
    client_id: String,
    /// The person the request names (disabling them withdraws it); None for a group.
    approver_id: Option<String>,
    expires_at: Millis,
    interval_ms: Millis,
    last_poll: Option<Millis>,
    /// True once the store may hold a decision; the answer then comes from the store.
    decided: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum PollCheck {
    /// Not in memory: load it from the store.
    Unknown,
    WrongClient,
    Expired,
    /// Polled sooner than the interval; the new interval in seconds.
    SlowDown(i64),
    Pending,
    Decided,
    /// Still pending, but its approver has been disabled: nobody will decide it.
    Withdrawn,
}

#[derive(Default)]
pub struct PendingCache {
    entries: Mutex<HashMap<String, Entry>>,
    /// Disabled approvers, as last read from the store (every second, see `Ciba::refresh`).
    disabled: RwLock<HashSet<String>>,
}

impl PendingCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the store says of a request: pending, or decided (then polls go to the store).
    pub fn insert(&self, row: &AuthRequest) {
        self.entry(
            &row.id,
            &row.client_id,
            row.approver_id.as_deref(),
            row.expires_at,
            row.interval_secs,
            !row.state.stage().is_open(),
        );
    }

    /// A request just stored as pending.
    pub fn insert_pending(
        &self,
        id: &str,
        client_id: &str,
        approver_id: Option<&str>,
        expires_at: Millis,
        interval_secs: i64,
    ) {
        self.entry(id, client_id, approver_id, expires_at, interval_secs, false);
    }

    fn entry(
        &self,
        id: &str,
        client_id: &str,
        approver_id: Option<&str>,
        expires_at: Millis,
        interval_secs: i64,
        decided: bool,
    ) {
        let mut entries = self.lock();
        let entry = entries.entry(id.to_owned()).or_insert_with(|| Entry {
            client_id: client_id.to_owned(),
            approver_id: approver_id.map(str::to_owned),
            expires_at,
            interval_ms: interval_secs * 1000,
            last_poll: None,
            decided: true,
        });
        entry.decided = decided;
    }

    /// Classifies a poll by `client_id` at `now`, in the order CIBA §11 and the issue prescribe:
    /// ownership, expiry, then the polling rate, which only applies while the request is pending.
    pub fn check(&self, auth_req_id: &str, client_id: &str, now: Millis) -> PollCheck {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(auth_req_id) else {
            return PollCheck::Unknown;
        };
        if entry.client_id != client_id {
            return PollCheck::WrongClient;
        }
        if now >= entry.expires_at {
            return PollCheck::Expired;
        }
        if entry.decided {
            return PollCheck::Decided;
        }
        if entry.approver_id.as_ref().is_some_and(|a| {
            self.disabled
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains(a)
        }) {
            return PollCheck::Withdrawn;
        }
        let too_soon = entry
            .last_poll
            .is_some_and(|last| now - last < entry.interval_ms);
        entry.last_poll = Some(now);
        if too_soon {
            entry.interval_ms += SLOW_DOWN_STEP_MS;
            return PollCheck::SlowDown(entry.interval_ms / 1000);
        }
        PollCheck::Pending
    }

    pub fn mark_decided(&self, auth_req_id: &str) {
        if let Some(entry) = self.lock().get_mut(auth_req_id) {
            entry.decided = true;
        }
    }

    pub fn mark_pending(&self, auth_req_id: &str) {
        if let Some(entry) = self.lock().get_mut(auth_req_id) {
            entry.decided = false;
        }
    }

    pub fn mark_all_decided(&self) {
        for entry in self.lock().values_mut() {
            entry.decided = true;
        }
    }

    /// The approvers now disabled: their pending requests are answered `Withdrawn`.
    pub fn set_disabled(&self, approvers: HashSet<String>) {
        *self.disabled.write().unwrap_or_else(|e| e.into_inner()) = approvers;
    }

    /// Drops entries past expiry; a later poll of one reloads it from the store and gets `expired_token`.
    pub fn sweep(&self, now: Millis) {
        self.lock().retain(|_, entry| entry.expires_at > now);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Client `agent`'s pending request `req`, polled every 5 s until 60 s.
    fn row() -> AuthRequest {
        AuthRequest {
            id: "req".into(),
            client_id: "agent".into(),
            created_at: 0,
            expires_at: 60_000,
            interval_secs: 5,
            ..crate::ciba::auth_request::sample()
        }
    }

    #[test]
    fn polling_faster_than_the_interval_adds_five_seconds_each_time() {
        // CIBA §11 / RFC 8628 §3.5: slow_down, and the interval grows by 5 s.
        let cache = PendingCache::default();
        cache.insert(&row());
        assert_eq!(cache.check("req", "agent", 1_000), PollCheck::Pending);
        assert_eq!(cache.check("req", "agent", 2_000), PollCheck::SlowDown(10));
        assert_eq!(cache.check("req", "agent", 11_000), PollCheck::SlowDown(15));
        assert_eq!(cache.check("req", "agent", 26_000), PollCheck::Pending);
    }

    #[test]
    fn ownership_and_expiry_come_before_the_rate() {
        let cache = PendingCache::default();
        cache.insert(&row());
        assert_eq!(cache.check("req", "other", 1_000), PollCheck::WrongClient);
        assert_eq!(
            cache.check("req", "agent", 1_000),
            PollCheck::Pending,
            "another client's poll spoils nothing"
        );
        assert_eq!(cache.check("req", "agent", 60_000), PollCheck::Expired);
        assert_eq!(cache.check("nope", "agent", 1_000), PollCheck::Unknown);
        cache.sweep(60_000);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_disabled_approvers_pending_requests_are_withdrawn() {
        let cache = PendingCache::default();
        cache.insert(&row());
        let approver = row().approver_id.unwrap();
        cache.set_disabled(HashSet::from([approver]));
        assert_eq!(cache.check("req", "agent", 1_000), PollCheck::Withdrawn);
        assert_eq!(cache.check("req", "agent", 60_000), PollCheck::Expired);
        cache.set_disabled(HashSet::new());
        assert_eq!(cache.check("req", "agent", 1_000), PollCheck::Pending);
    }

    #[test]
    fn decided_requests_are_answered_from_the_store() {
        let cache = PendingCache::default();
        cache.insert(&row());
        cache.mark_decided("req");
        assert_eq!(cache.check("req", "agent", 1_000), PollCheck::Decided);
        assert_eq!(
            cache.check("req", "agent", 1_001),
            PollCheck::Decided,
            "no slow_down once decided"
        );
        cache.mark_pending("req");
        assert_eq!(cache.check("req", "agent", 1_002), PollCheck::Pending);
    }
}
