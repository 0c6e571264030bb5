//! Live updates for the inbox: a Server-Sent Events stream per open inbox, which says "changed" when
//! the approver's inbox changes. Changes are pushed, not polled: a new request or a decision is
//! announced in-process (SQLite) or by PostgreSQL NOTIFY from any instance, and the stream also
//! wakes when the approver's next pending request runs out of time. The page then reloads the inbox.
use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    http::StatusCode,
    response::sse::{Event, KeepAlive, Sse},
};
use futures::Stream;
use tokio::sync::broadcast::{error::RecvError, Receiver};
use tower_sessions::Session;

use super::identity::IdentityApp;
use crate::ciba::{Ciba, EVERY_INBOX};

/// How soon to look again when the next expiry could not be read.
const RETRY: Duration = Duration::from_secs(5);

pub async fn inbox(
    identity: Arc<IdentityApp>,
    ciba: Arc<Ciba>,
    session: Session,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, StatusCode> {
    let approver = identity
        .approver_of(&session)
        .await
        .ok()
        .flatten()
        .ok_or(StatusCode::UNAUTHORIZED)?;
    // Subscribed before the first event goes out: whatever changes after it is announced, and the page
    // fetches whatever changed between its load and the first event.
    let changes = ciba.inbox_changes();
    let first = Watch {
        ciba,
        approver_id: approver.id,
        changes,
        started: false,
    };
    let stream = futures::stream::unfold(first, |mut watch| async move {
        if !watch.started {
            watch.started = true;
            return Some((
                Ok(Event::default().event("message").data("subscribed")),
                watch,
            ));
        }
        watch.next_change().await?;
        Some((Ok(Event::default().event("message").data("changed")), watch))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

struct Watch {
    ciba: Arc<Ciba>,
    approver_id: String,
    changes: Receiver<String>,
    started: bool,
}

impl Watch {
    /// Waits until the inbox changes; None when the server is shutting down.
    async fn next_change(&mut self) -> Option<()> {
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
        loop {
            tokio::select! {
                change = self.changes.recv() => match change {
                    Ok(id) if id == self.approver_id || id == EVERY_INBOX => return Some(()),
                    Ok(_) => {}
                    // Announcements were dropped while this stream lagged: one of them may be ours.
                    Err(RecvError::Lagged(_)) => return Some(()),
                    Err(RecvError::Closed) => return None,
                },
                _ = tokio::time::sleep_until(deadline) => return Some(()),
            }
        }
    }
}

/// A deadline that never comes in practice (a year away).
fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600)
}
