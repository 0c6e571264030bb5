//! Telling ping and push clients. When a request of theirs is approved, denied or expires, POST to the
//! client's notification endpoint with `Authorization: Bearer <client_notification_token>`: for ping
//! (CIBA §10.2) `{"auth_req_id": "…"}`, and the client then redeems at the token endpoint; for push
//! (§10.3) the token response itself or the error, each with the `auth_req_id` (the delivery is the
//! one redemption: see `Ciba::push_result`).
//!
//! Delivery is at least once. The notification is queued in the outbox in the decision's own
//! transaction (or by the expiry sweep), claimed with a lease before it is sent, and marked done only
//! after a 2xx answer; a failure is tried again with exponential back-off and jitter until
//! `GIVE_UP_AFTER_MS` past the request's expiry. A crash between decision and delivery leaves the
//! queued row for the next sweep, of this instance or another, and the lease keeps two instances from
//! sending it at once. Endpoints are checked against [`EndpointPolicy`] on the address connected to.
use std::{net::SocketAddr, sync::Arc, time::Duration};

use rand::Rng;
use serde_json::json;

use crate::{
    ciba::{
        clients::endpoint::{self, EndpointPolicy},
        Ciba,
    },
    clock::{Clock, Millis},
    store::{
        outbox::{ClientDue, CLIENT},
        Store, StoreError,
    },
};

/// How long a claim lasts: longer than one delivery can take (the client's timeouts below).
const LEASE_MS: Millis = 30_000;
/// How far back the expiry sweep looks: the longest a request can stay pending, and then some.
const EXPIRY_HORIZON_MS: Millis = 3 * 3_600_000;
/// Notifications are given up this long after their request's expiry.
const GIVE_UP_AFTER_MS: Millis = 10 * 60_000;
/// The longest wait between tries.
const MAX_BACKOFF_MS: Millis = 60_000;
/// Claimed per sweep.
const BATCH: i64 = 50;
/// An endpoint's answer is read only this far (it carries nothing we need).
const MAX_ANSWER_BYTES: usize = 4096;

pub struct ClientNotifier {
    ciba: Arc<Ciba>,
    store: Store,
    clock: Arc<dyn Clock>,
    policy: EndpointPolicy,
    http: reqwest::Client,
    /// For loopback endpoints when they are allowed: http, or https with a self-signed certificate.
    loopback_http: reqwest::Client,
}

impl ClientNotifier {
    pub fn new(
        ciba: Arc<Ciba>,
        clock: Arc<dyn Clock>,
        policy: EndpointPolicy,
    ) -> anyhow::Result<ClientNotifier> {
        let store = ciba.store().clone();
        let builder = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(3))
                .timeout(Duration::from_secs(10))
                .dns_resolver(Arc::new(CheckedResolver { policy }))
        };
        Ok(ClientNotifier {
            ciba,
            store,
            clock,
            policy,
            http: builder().https_only(true).build()?,
            loopback_http: builder().danger_accept_invalid_certs(true).build()?,
        })
    }

    /// Delivers what is due now and again whenever `wake` fires, and every second.
    pub fn start(self: Arc<Self>, wake: Arc<tokio::sync::Notify>) {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.run_once().await {
                    tracing::warn!(error = %e, "client notification sweep failed; retrying");
                }
                let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
            }
        });
    }

    /// One sweep: queue the notifications of newly expired requests, then claim and deliver what is
    /// due. Returns how many were delivered.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        self.store
            .queue_expired_client_notifications(now, now - EXPIRY_HORIZON_MS)
            .await?;
        let due = self
            .store
            .claim_client_notifications(now, LEASE_MS, BATCH)
            .await?;
        let sent = futures::future::join_all(due.into_iter().map(|d| self.settle(d))).await;
        Ok(sent.into_iter().filter(|&sent| sent).count())
    }

    /// Delivers one notification and records the outcome; true if delivered.
    async fn settle(&self, due: ClientDue) -> bool {
        let outcome = self.deliver(&due).await;
        let now = self.clock.now();
        let recorded = match &outcome {
            Ok(()) => {
                self.store
                    .notification_done(&due.auth_req_id, CLIENT, now)
                    .await
            }
            Err(why) if now > due.expires_at + GIVE_UP_AFTER_MS => {
                tracing::error!(client_id = %due.client_id, attempts = due.attempts, error = %why, "client notification given up");
                self.store
                    .notification_done(&due.auth_req_id, CLIENT, now)
                    .await
            }
            Err(why) => {
                tracing::warn!(client_id = %due.client_id, attempts = due.attempts, error = %why, "client notification failed; will retry");
                self.store
                    .retry_client_notification(&due.auth_req_id, now + backoff(due.attempts), why)
                    .await
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "client notification outcome not recorded; the lease will expire");
        }
        outcome.is_ok()
    }

    async fn deliver(&self, due: &ClientDue) -> Result<(), String> {
        let raw = due
            .notify_url
            .as_deref()
            .ok_or("the client has no notification endpoint")?;
        let url = self.policy.check_url(raw)?;
        // An IP literal is not resolved, so the resolver's check does not see it: check it here.
        if let Some(ip) = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        } {
            if !self.policy.allows(ip) {
                return Err(format!("{ip} is not a public address"));
            }
        }
        let loopback = self.policy.allow_loopback
            && endpoint::resolve(&url)
                .await?
                .iter()
                .all(|a| a.ip().is_loopback());
        let http = if loopback {
            &self.loopback_http
        } else {
            &self.http
        };
        let body = if due.delivery_mode == "push" {
            self.ciba
                .push_result(&due.auth_req_id)
                .await
                .map_err(|e| format!("the push result cannot be made: {e}"))?
        } else {
            json!({ "auth_req_id": due.auth_req_id })
        };
        let mut request = http.post(url).json(&body);
        if let Some(token) = &due.notification_token {
            request = request.bearer_auth(token);
        }
        let mut answer = request.send().await.map_err(|e| with_causes(&e))?;
        let status = answer.status();
        // Read a little of the answer, so the connection can be reused, and no more.
        let mut read = 0;
        while let Ok(Some(chunk)) = answer.chunk().await {
            read += chunk.len();
            if read > MAX_ANSWER_BYTES {
                break;
            }
        }
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the endpoint answered {status}"))
        }
    }
}

/// A DNS resolver for the delivery client that returns only addresses the policy allows, so the
/// address checked is the address connected to.
struct CheckedResolver {
    policy: EndpointPolicy,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = found.filter(|a| policy.allows(a.ip())).collect();
            if allowed.is_empty() {
                let refused: Box<dyn std::error::Error + Send + Sync> =
                    format!("{} resolves to no public address", name.as_str()).into();
                return Err(refused);
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// An error with its causes ("error sending request: …: localhost resolves to no public address").
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// The wait before try `attempts + 1`: one second doubling per try, at most a minute, ±20 % jitter so
/// that many failed notifications do not retry in lockstep.
fn backoff(attempts: i64) -> Millis {
    let base = (1_000i64 << attempts.clamp(1, 16).saturating_sub(1)).min(MAX_BACKOFF_MS);
    let jitter = rand::rng().random_range(-(base / 5)..=(base / 5));
    base + jitter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_a_minute_with_jitter() {
        for (attempts, base) in [
            (1, 1_000),
            (2, 2_000),
            (3, 4_000),
            (7, 60_000),
            (30, 60_000),
        ] {
            let wait = backoff(attempts);
            assert!(
                (base - base / 5..=base + base / 5).contains(&wait),
                "{attempts}: {wait}"
            );
        }
    }
}
