//! Notification e-mail over SMTP (lettre): one message per new request, and account notices.
use std::{sync::Arc, time::Duration};

use lettre::{
    message::{header::ContentType, Mailbox},
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};

use super::{one_line, warning};
use crate::{
    ciba::{ids::page_ref, request::RequestCreated},
    identity::notices::AccountNotice,
    store::outbox::Audience,
};

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    public_url: String,
}

/// Attempts per message; waits double from one second between them.
const ATTEMPTS: u32 = 4;

impl Mailer {
    /// `url`: `smtp://host:port` (plain, for a local relay), `smtp://...?tls=required` or
    /// `smtps://user:password@host` (see lettre's `from_url`).
    pub fn new(url: &str, from: &str, public_url: &url::Url) -> anyhow::Result<Mailer> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
            .timeout(Some(Duration::from_secs(10)))
            .build();
        let from: Mailbox = from
            .parse()
            .map_err(|e| anyhow::anyhow!("COUNTERSIGN_SMTP_FROM {from:?}: {e}"))?;
        Ok(Mailer {
            transport,
            from,
            public_url: public_url.as_str().trim_end_matches('/').to_owned(),
        })
    }

    /// The message for one new request.
    pub fn message(&self, event: &RequestCreated) -> anyhow::Result<Message> {
        let action = one_line(&event.action, 80);
        let body = format!(
            "{client} asks for your approval:\n\n    {action} - {target}\n\n{warning}\
             Read the request in full and decide (your passkey is needed):\n{url}/requests/{id}\n\n\
             If you did not expect this request, deny it.\n",
            warning = warning(event)
                .map(|w| format!("{w}\n\n"))
                .unwrap_or_default(),
            client = one_line(&event.client_name, 60),
            target = one_line(&event.target, 160),
            url = self.public_url,
            id = page_ref(&event.auth_req_id),
        );
        self.compose(
            &event.approver_name,
            &event.approver_email,
            format!("Approval needed: {action}"),
            body,
        )
    }

    /// A plain-text message to one approver.
    fn compose(
        &self,
        name: &str,
        email: &str,
        subject: String,
        body: String,
    ) -> anyhow::Result<Message> {
        let to: Mailbox = format!(
            "{} <{email}>",
            one_line(name, 60).replace(['<', '>', '"'], "")
        )
        .parse()
        .or_else(|_| email.parse())?;
        Ok(Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)?)
    }

    /// The message telling an approver of a change to their account (`identity::notices`).
    pub fn notice_message(&self, notice: &AccountNotice) -> anyhow::Result<Message> {
        let body = format!(
            "{}\n\nSee your account: {}/account\n\n\
             If this was not you, tell an admin now: they can revoke the passkey.\n",
            notice.body, self.public_url
        );
        self.compose(&notice.name, &notice.email, notice.title.clone(), body)
    }

    /// Sends `message`, with retries.
    pub async fn send(&self, approver_id: &str, message: Message) {
        let sent = super::with_retries(
            "email",
            ATTEMPTS,
            |_| true,
            || self.transport.send(message.clone()),
        )
        .await;
        match sent {
            Ok(_) => tracing::info!(approver_id, "notification e-mail sent"),
            Err(e) => tracing::error!(error = %e, "notification e-mail failed; giving up"),
        }
    }

    async fn deliver(&self, event: &RequestCreated) {
        match self.message(event) {
            Ok(message) => self.send(&event.approver_id, message).await,
            Err(e) => tracing::warn!(error = %e, "notification e-mail could not be composed"),
        }
    }
}

impl super::Channel for Mailer {
    const NAME: &'static str = "email";
    const AUDIENCE: Audience = Audience::Everyone;

    fn concerns(&self, _approver_id: &str) -> bool {
        true
    }

    async fn announce(self: Arc<Self>, event: RequestCreated) {
        self.deliver(&event).await;
    }
}
