//! Telling approvers that a request is waiting, outside the page: Web Push to the browsers they opted
//! in, and e-mail over SMTP when configured. A notification names the action and links to the request
//! page; it carries no secrets (deciding needs the approver's passkey, and the link alone grants nothing).
use std::future::Future;

use tokio::sync::broadcast;

use crate::ciba::request::RequestCreated;

pub mod devices;
pub mod mail;
pub mod push;

pub use mail::Mailer;
pub use push::Pusher;

/// For every request the domain announces, runs what `deliver` returns in its own task (nothing when
/// it returns None: the request concerns nobody this channel reaches).
pub(crate) fn listen<F, Fut>(
    mut events: broadcast::Receiver<RequestCreated>,
    channel: &'static str,
    deliver: F,
) where
    F: Fn(RequestCreated) -> Option<Fut> + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(delivery) = deliver(event) {
                        tokio::spawn(delivery);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        channel,
                        "notification queue overflowed; some notifications were not sent"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

/// Agent text for a header or a plain-text line: no line breaks, no invisible characters, bounded.
fn one_line(text: &str, max: usize) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .filter(|c| !crate::ciba::request::is_invisible_format(*c))
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
