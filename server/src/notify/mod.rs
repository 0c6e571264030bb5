//! Telling approvers that a request is waiting, outside the page: Web Push to the browsers they opted
//! in, and e-mail over SMTP when configured. A notification names the action and links to the request
//! page; it carries no secrets (deciding needs the approver's passkey, and the link alone grants nothing).
//!
//! Each channel announces a request as soon as the domain reports it, and every few seconds sweeps for
//! requests whose announcement was lost (a crash between the request's commit and the send, a full
//! event queue, an instance that went away). Either way the announcement is first claimed in the
//! outbox, so it is made once, by one instance, and made again only if its claim ran out unfinished.
use std::{future::Future, sync::Arc, time::Duration};

use tokio::sync::broadcast;

use crate::{
    ciba::{action::AgentAction, request::RequestCreated},
    clock::Clock,
    store::{
        outbox::{Audience, DueNotification},
        Store,
    },
};

pub mod client;
pub mod mail;
pub mod notices;
pub mod push;

pub use mail::Mailer;
pub use push::Pusher;

/// How long a claim lasts; an announcement is cut off before it runs out, so no other instance can
/// claim a request that is still being announced.
const LEASE_MS: i64 = 120_000;
const ANNOUNCE_WITHIN: Duration = Duration::from_secs(100);
/// A sweep leaves requests this young to the immediate path.
const GRACE_MS: i64 = 10_000;
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// One way of telling approvers.
pub trait Channel: Send + Sync + 'static {
    /// Its name in the outbox.
    const NAME: &'static str;
    /// Whose requests its sweeps look at.
    const AUDIENCE: Audience;
    /// Whether a request to `approver_id` is this channel's to announce; cheap, as it runs on the
    /// /bc-authorize path.
    fn concerns(&self, approver_id: &str) -> bool;
    /// Announces one request, with the channel's own retries; failures are the channel's to log.
    fn announce(self: Arc<Self>, event: RequestCreated) -> impl Future<Output = ()> + Send;
}

/// Runs `channel`: the domain's announcements as they come, and the sweeps, until the domain goes.
/// `horizon_ms`: the longest a request stays pending (the policy's longest expiry), how far back a
/// sweep looks.
pub fn run<C: Channel>(
    channel: Arc<C>,
    store: Store,
    clock: Arc<dyn Clock>,
    horizon_ms: i64,
    mut events: broadcast::Receiver<RequestCreated>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tokio::select! {
                received = events.recv() => match received {
                    Ok(event) if channel.concerns(&event.approver_id) => {
                        tokio::spawn(deliver(channel.clone(), store.clone(), clock.clone(), event));
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(
                            missed,
                            channel = C::NAME,
                            "notification events overflowed; the sweep will announce them"
                        );
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick() => sweep(&channel, &store, &clock, horizon_ms).await,
            }
        }
    });
}

/// Claims, announces and marks done one request.
async fn deliver<C: Channel>(
    channel: Arc<C>,
    store: Store,
    clock: Arc<dyn Clock>,
    event: RequestCreated,
) {
    let id = event.auth_req_id.clone();
    let key = outbox_key(C::NAME, &event);
    match store
        .claim_notification(&id, &key, clock.now(), LEASE_MS)
        .await
    {
        Ok(true) => {}
        // Another instance, or an earlier sweep, has it.
        Ok(false) => return,
        // The sweep tries again once the database answers.
        Err(e) => return tracing::warn!(error = %e, channel = C::NAME, "notification not claimed"),
    }
    if tokio::time::timeout(ANNOUNCE_WITHIN, channel.announce(event))
        .await
        .is_err()
    {
        tracing::warn!(channel = C::NAME, "announcement cut off: it took too long");
    }
    if let Err(e) = store.notification_done(&id, &key, clock.now()).await {
        tracing::warn!(error = %e, channel = C::NAME, "notification not marked done");
    }
}

async fn sweep<C: Channel>(
    channel: &Arc<C>,
    store: &Store,
    clock: &Arc<dyn Clock>,
    horizon_ms: i64,
) {
    let now = clock.now();
    let due = match store
        .notifications_due(C::NAME, C::AUDIENCE, now, now - horizon_ms, now - GRACE_MS)
        .await
    {
        Ok(due) => due,
        Err(e) => return tracing::warn!(error = %e, channel = C::NAME, "notification sweep failed"),
    };
    for due in due {
        let id = due.auth_req_id.clone();
        let key = match due.shared {
            0 => C::NAME.to_owned(),
            _ => format!("{}:{}", C::NAME, due.approver_id),
        };
        match event_of(due) {
            Some(event) => {
                tracing::info!(
                    channel = C::NAME,
                    "announcing a request whose announcement was lost"
                );
                tokio::spawn(deliver(
                    channel.clone(),
                    store.clone(),
                    clock.clone(),
                    event,
                ));
            }
            None => {
                // Nothing sensible to say about it: settled, so it cannot hold up later sweeps.
                tracing::error!(
                    channel = C::NAME,
                    "a request's action is unreadable; not announced"
                );
                let settled = async {
                    if store.claim_notification(&id, &key, now, LEASE_MS).await? {
                        store.notification_done(&id, &key, now).await?;
                    }
                    Ok::<_, crate::store::StoreError>(())
                };
                if let Err(e) = settled.await {
                    tracing::warn!(error = %e, channel = C::NAME, "notification not settled");
                }
            }
        }
    }
}

/// The outbox key of announcing `event` on `channel`: the channel's name, or for a request with
/// several addressees the name and the addressee, so each of them is told once.
fn outbox_key(channel: &str, event: &RequestCreated) -> String {
    if event.shared {
        format!("{channel}:{}", event.approver_id)
    } else {
        channel.to_owned()
    }
}

/// Runs `attempt` up to `attempts` times while it fails with an error `retryable` accepts, waiting
/// one second before the second try and twice as long before each further one; the last outcome.
async fn with_retries<T, E, Fut>(
    channel: &'static str,
    attempts: u32,
    retryable: impl Fn(&E) -> bool,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T, E>
where
    E: std::fmt::Display,
    Fut: Future<Output = Result<T, E>>,
{
    let mut wait = Duration::from_secs(1);
    let mut tried = 1;
    loop {
        match attempt().await {
            Err(e) if tried < attempts && retryable(&e) => {
                tracing::warn!(error = %e, attempt = tried, channel, "notification failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
                tried += 1;
            }
            outcome => return outcome,
        }
    }
}

/// The announcement of a request the sweep found.
fn event_of(due: DueNotification) -> Option<RequestCreated> {
    let action = serde_json::from_str::<Vec<AgentAction>>(&due.authorization_details)
        .ok()?
        .pop()?;
    Some(RequestCreated {
        auth_req_id: due.auth_req_id,
        approver_id: due.approver_id,
        approver_email: due.approver_email,
        approver_name: due.approver_name,
        client_name: due.client_name,
        action: action.action,
        target: action.target,
        expires_at: due.expires_at,
        shared: due.shared != 0,
    })
}

/// What a notification says first when the agent's texts hold characters the request page would mark
/// (`app::text::segments`, the page's own rules), since a notification cannot mark them.
fn warning(event: &RequestCreated) -> Option<&'static str> {
    let mut found = app::text::Suspicion::default();
    for text in [&event.action, &event.target, &event.client_name] {
        let s = app::text::suspicion(text);
        found.disguised |= s.disguised;
        found.right_to_left |= s.right_to_left;
    }
    if found.disguised {
        Some("Warning: hidden or look-alike characters. Check every character on the request page.")
    } else if found.right_to_left {
        Some("Warning: right-to-left letters. Check the order of the characters on the request page.")
    } else {
        None
    }
}

/// Agent text for a header or a plain-text line: no line breaks, no invisible characters, bounded.
fn one_line(text: &str, max: usize) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .filter(|c| !app::text::is_invisible(*c))
        .collect();
    if cleaned.chars().count() > max {
        format!("{}…", cleaned.chars().take(max).collect::<String>())
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_text_cannot_break_lines_or_hide_characters() {
        assert_eq!(one_line("a\r\nBcc: x\u{202E}", 50), "a  Bcc: x");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }
}
