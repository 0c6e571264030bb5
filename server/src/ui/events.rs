//! Live updates for the inbox: a Server-Sent Events stream per open inbox, which says "changed" when
//! the approver's inbox changes. Changes are pushed, not polled: a new request or a decision is
//! announced in-process (SQLite) or by PostgreSQL NOTIFY from any instance, and the stream also
//! wakes when the approver's next pending request runs out of time. The page then reloads the inbox.
//! Each stream looks at its session again before every event and every 15 seconds, and ends once
//! the person is signed out (here or everywhere), disabled, or their passkey is revoked; a person
//! has at most a few streams open on an instance.
use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    http::StatusCode,
    response::sse::{Event, KeepAlive, Sse},
};
use futures::Stream;
use tokio::sync::broadcast::{error::RecvError, Receiver};
use tower_sessions::Session;

use super::identity::IdentityApp;
use crate::{
    ciba::{Ciba, EVERY_INBOX},
    identity::sessions::DbSessionStore,
};

/// How soon to look again when the next expiry could not be read.
const RETRY: Duration = Duration::from_secs(5);

/// How often an open stream checks that its session still stands: signed out, signed out
/// everywhere, disabled or with its passkey revoked, the stream ends within this long.
pub const RECHECK: Duration = Duration::from_secs(15);

/// Open streams per person on one instance: a few tabs and devices, not a flood.
pub const MAX_STREAMS_PER_PERSON: usize = 6;

/// The open inbox streams per approver on this instance.
#[derive(Default)]
pub struct OpenStreams {
    counts: Mutex<HashMap<String, usize>>,
}

impl OpenStreams {
    /// A place for one more stream of `approver_id`, or None when they have the most allowed.
    fn open(self: &Arc<Self>, approver_id: &str) -> Option<StreamSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(approver_id.to_owned()).or_default();
        if *count >= MAX_STREAMS_PER_PERSON {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            streams: self.clone(),
            approver_id: approver_id.to_owned(),
        })
    }
}

/// One open stream, counted until it is dropped.
struct StreamSlot {
    streams: Arc<OpenStreams>,
    approver_id: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut counts = self
            .streams
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.approver_id) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.approver_id);
            }
        }
    }
}

/// What the stream needs to look at its session again, fresh from the store: the session object a
/// request carries keeps what it loaded, and would not see a sign-out made by another request.
pub struct SessionCheck {
    pub identity: Arc<IdentityApp>,
    pub sessions: DbSessionStore,
    pub streams: Arc<OpenStreams>,
}

impl SessionCheck {
    async fn still_signed_in(&self, session: &Session, approver_id: &str) -> bool {
        let Some(id) = session.id() else {
            return false;
        };
        let fresh = Session::new(Some(id), Arc::new(self.sessions.clone()), None);
        matches!(
            self.identity.approver_of(&fresh).await,
            Ok(Some(approver)) if approver.id == approver_id && !approver.disabled
        )
    }
}

pub async fn inbox(
    check: Arc<SessionCheck>,
    ciba: Arc<Ciba>,
    session: Session,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, StatusCode> {
    let approver = check
        .identity
        .approver_of(&session)
        .await
        .ok()
        .flatten()
        .ok_or(StatusCode::UNAUTHORIZED)?;
    let slot = check
        .streams
        .open(&approver.id)
        .ok_or(StatusCode::TOO_MANY_REQUESTS)?;
    // Subscribed before the first event goes out: whatever changes after it is announced, and the page
    // fetches whatever changed between its load and the first event.
    let changes = ciba.inbox_changes();
    let first = Watch {
        ciba,
        approver_id: approver.id,
        changes,
        started: false,
        check,
        session,
        _slot: slot,
    };
    let stream = futures::stream::unfold(first, |mut watch| async move {
        if !watch.started {
            watch.started = true;
            return Some((
                Ok(Event::default().event("message").data("subscribed")),
                watch,
            ));
        }
        loop {
            match watch.next_change().await? {
                Wake::Changed => break,
                Wake::Recheck => {}
            }
            if !watch.still_signed_in().await {
                return None;
            }
        }
        if !watch.still_signed_in().await {
            return None;
        }
        Some((Ok(Event::default().event("message").data("changed")), watch))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Why a stream woke.
enum Wake {
    Changed,
    Recheck,
}

struct Watch {
    ciba: Arc<Ciba>,
    approver_id: String,
    changes: Receiver<String>,
    started: bool,
    check: Arc<SessionCheck>,
    session: Session,
    _slot: StreamSlot,
}

impl Watch {
    async fn still_signed_in(&self) -> bool {
        self.check
            .still_signed_in(&self.session, &self.approver_id)
            .await
    }

    /// Waits until the inbox changes, or it is time to look at the session again; None when the
    /// server is shutting down.
    async fn next_change(&mut self) -> Option<Wake> {
        let now = self.ciba.now();
        // With nothing pending, only an announcement can change the inbox.
        let wait = match self.ciba.next_expiry(&self.approver_id).await {
            Ok(Some(at)) => Duration::from_millis(u64::try_from(at - now).unwrap_or(0)),
            Ok(None) => Duration::MAX,
            Err(_) => RETRY,
        };
        let deadline = tokio::time::Instant::now()
            .checked_add(wait)
            .unwrap_or_else(far_future);
        let recheck = tokio::time::Instant::now() + RECHECK;
        loop {
            tokio::select! {
                change = self.changes.recv() => match change {
                    Ok(id) if id == self.approver_id || id == EVERY_INBOX => return Some(Wake::Changed),
                    Ok(_) => {}
                    // Announcements were dropped while this stream lagged: one of them may be ours.
                    Err(RecvError::Lagged(_)) => return Some(Wake::Changed),
                    Err(RecvError::Closed) => return None,
                },
                _ = tokio::time::sleep_until(deadline) => return Some(Wake::Changed),
                _ = tokio::time::sleep_until(recheck) => return Some(Wake::Recheck),
            }
        }
    }
}

/// A deadline that never comes in practice (a year away).
fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600)
}
