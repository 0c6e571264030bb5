//! Live updates for the inbox: a Server-Sent Events stream per open inbox. It is fed by the database
//! (a cheap fingerprint of the approver's requests, read once a second), so a request created or
//! decided on any instance reaches every open inbox within about a second.
use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    http::StatusCode,
    response::sse::{Event, KeepAlive, Sse},
};
use futures::Stream;
use tower_sessions::Session;

use crate::{ciba::Ciba, ui::identity::IdentityApp};

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
    // The first event goes out at once: whatever changed between the page's load and this subscription
    // is then fetched too.
    let first = (ciba, approver.id, None, true);
    let stream =
        futures::stream::unfold(first, |(ciba, approver_id, mut last, first)| async move {
            if first {
                let now = ciba
                    .store()
                    .inbox_fingerprint(&approver_id, ciba.now())
                    .await
                    .ok();
                return Some((
                    Ok(Event::default().event("message").data("subscribed")),
                    (ciba, approver_id, now, false),
                ));
            }
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = ciba
                    .store()
                    .inbox_fingerprint(&approver_id, ciba.now())
                    .await
                    .ok();
                if now.is_some() && now != last {
                    last = now;
                    return Some((
                        Ok(Event::default().event("message").data("changed")),
                        (ciba, approver_id, last, false),
                    ));
                }
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
