//! Account notices (`identity::notices`) by e-mail, when configured, and Web Push to every browser
//! the approver opted in, side by side.
use std::sync::Arc;

use super::{push::PushPayload, Mailer, Pusher};
use crate::{
    identity::notices::{AccountNotice, AccountNotices},
    secrets::random_id,
};

/// A push notice may wait this long for an offline browser: long enough to be seen after a night.
const PUSH_TTL_SECS: u32 = 24 * 3600;

pub struct Notices {
    pub mailer: Option<Arc<Mailer>>,
    pub pusher: Arc<Pusher>,
}

impl AccountNotices for Notices {
    fn tell(&self, notice: AccountNotice) {
        let mail = self
            .mailer
            .clone()
            .and_then(|mailer| match mailer.notice_message(&notice) {
                Ok(message) => Some((mailer, message)),
                Err(e) => {
                    tracing::warn!(error = %e, "account notice e-mail could not be composed");
                    None
                }
            });
        let pusher = self.pusher.clone();
        let payload = PushPayload {
            title: notice.title,
            body: notice.body,
            url: "/account".into(),
            // Notices never replace one another.
            tag: format!("account-{}", random_id()),
        };
        tokio::spawn(async move {
            let by_mail = async {
                if let Some((mailer, message)) = mail {
                    mailer.send(&notice.approver_id, message).await;
                }
            };
            let by_push = pusher.notify_approver(&notice.approver_id, &payload, PUSH_TTL_SECS);
            futures::future::join(by_mail, by_push).await;
        });
    }
}
