//! Web Push: each new request is announced to every browser its approver opted in. The payload is
//! encrypted for that browser (RFC 8291, aes128gcm) and the request to the push service is signed with
//! the deployment's VAPID key (RFC 8292), both by the `web-push` crate; this module chooses the
//! payload, keeps the subscriptions and talks HTTP.
use std::{
    collections::HashSet,
    sync::{Arc, RwLock},
    time::Duration,
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::Serialize;
use tokio::sync::broadcast;
use web_push::{
    request_builder::build_request, ContentEncoding, PartialVapidSignatureBuilder,
    SubscriptionInfo, Urgency, VapidSignatureBuilder, WebPushMessageBuilder,
};

use super::{one_line, warning};
use crate::{
    ciba::{ids::page_ref, request::RequestCreated},
    clock::{Clock, Millis},
    sealing::{Kek, SealError},
    secrets::random_id,
    store::{
        outbox::Audience,
        push::{PushSubscriptionRow, VapidKeyRow},
        Store, StoreResult,
    },
};

/// Push services browsers use today (Chrome, Firefox, Safari, Edge). Subscriptions naming any other
/// host are refused, so a signed-in user cannot make the server send requests to arbitrary URLs.
pub const DEFAULT_PUSH_SERVICES: &str =
    "fcm.googleapis.com,push.services.mozilla.com,push.apple.com,notify.windows.com";

/// Attempts per subscription for retryable failures (429, 5xx, network); waits double from one second.
const ATTEMPTS: u32 = 3;

/// The hosts the server will deliver to: each entry matches itself and its subdomains. Plain `http`
/// is accepted only for loopback hosts, so a local test receiver can be named explicitly.
#[derive(Clone, Debug)]
pub struct PushServices(Vec<String>);

impl PushServices {
    pub fn parse(list: &str) -> PushServices {
        PushServices(
            list.split(',')
                .map(|h| h.trim().trim_start_matches('.').to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        )
    }

    /// The endpoint as a URL, if it is one the server may deliver to.
    pub fn check(&self, endpoint: &str) -> Result<url::Url, &'static str> {
        let url = url::Url::parse(endpoint).map_err(|_| "not a URL")?;
        let host = url.host_str().ok_or("no host")?.to_ascii_lowercase();
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        match url.scheme() {
            // Push services answer on the standard port; no other port of theirs is ours to call.
            "https" if loopback || url.port().is_none() => {}
            "http" if loopback => {}
            _ => return Err("not https on the standard port"),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("credentials in the URL");
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let allowed = self
            .0
            .iter()
            .any(|s| host == s || host.ends_with(&format!(".{s}")));
        if !allowed {
            return Err("not a known push service");
        }
        Ok(url)
    }
}

/// Seals a VAPID key an earlier version stored in plain text; only `countersign keys seal-legacy`
/// does this (`legacy`). True if it sealed one.
pub async fn seal_plain_vapid_key(store: &Store, kek: &Kek) -> anyhow::Result<bool> {
    let Some(key) = store.current_vapid_key().await? else {
        return Ok(false);
    };
    if !matches!(kek.open(VAPID_LABEL, &key), Err(SealError::Plain)) {
        return Ok(false);
    }
    store
        .reseal_vapid_key(&key, &kek.seal(VAPID_LABEL, &key))
        .await?;
    tracing::info!("VAPID key sealed under the key-encryption key");
    Ok(true)
}

/// A browser that receives someone's notifications.
pub struct Device {
    pub id: String,
    pub endpoint: String,
    /// The browser and system, as its user agent said when it subscribed.
    pub label: String,
    pub created_at: Millis,
    pub last_sent_at: Option<Millis>,
    /// Deliveries that failed in a row.
    pub failures: i64,
}

/// A browser's new subscription: its push endpoint and the keys its messages are encrypted to.
pub struct NewDevice {
    pub approver_id: String,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    pub label: String,
}

/// What the service worker receives (and shows): the action in the title, the agent and target in
/// the body, the request page to open.
#[derive(Debug, Serialize)]
pub struct PushPayload {
    pub title: String,
    pub body: String,
    pub url: String,
    /// One notification per request: a repeat replaces, never stacks.
    pub tag: String,
}

impl PushPayload {
    pub fn for_request(event: &RequestCreated) -> PushPayload {
        let asks = format!(
            "{} asks: {} \u{2014} {}",
            one_line(&event.client_name, 60),
            one_line(&event.action, 80),
            one_line(&event.target, 160)
        );
        PushPayload {
            title: format!("Approval needed: {}", one_line(&event.action, 80)),
            body: match warning(event) {
                Some(warning) => format!("{warning} {asks}"),
                None => asks,
            },
            url: format!("/requests/{}", page_ref(&event.auth_req_id)),
            tag: format!("request-{}", page_ref(&event.auth_req_id)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("the subscription no longer exists ({0})")]
    Gone(u16),
    #[error("the push service refused the message ({0})")]
    Refused(u16),
    #[error("the push service is unavailable ({0})")]
    Unavailable(String),
    #[error("the message could not be built: {0}")]
    Build(String),
}

pub struct Pusher {
    store: Store,
    clock: Arc<dyn Clock>,
    vapid: PartialVapidSignatureBuilder,
    public_key: String,
    /// The VAPID `sub` claim: how a push service can reach the operator (RFC 8292 §2.1).
    contact: String,
    services: PushServices,
    http: reqwest::Client,
    /// Approvers who have (or had) a subscription, topped up from the database every
    /// `SUBSCRIBERS_REFRESH`: most requests go to approvers without push, and on the /bc-authorize
    /// path they should cost one set lookup, not a database read or a task. It only grows (a refresh
    /// that removed entries could race with a subscription made meanwhile); an approver who
    /// unsubscribed costs one read of their (empty) subscriptions per request.
    subscribers: RwLock<HashSet<String>>,
}

/// How stale the subscriber list may be; a subscription made on another instance counts after this.
const SUBSCRIBERS_REFRESH: Duration = Duration::from_secs(2);

impl Pusher {
    /// Loads the deployment's VAPID key, making one at first start. The private key is stored sealed
    /// (see `sealing`); one in plain text is refused (`seal_plain_vapid_key` is the way). The public key
    /// browsers subscribe with is derived from the private one, never read from the database.
    pub async fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        kek: &Kek,
        contact: String,
        services: PushServices,
    ) -> anyhow::Result<Pusher> {
        let now = clock.now();
        let key = store.vapid_key(|| new_vapid_key(kek, now)).await?;
        let private = match kek.open(VAPID_LABEL, &key.private_key) {
            Ok(private) => private,
            Err(SealError::Plain) => anyhow::bail!(
                "the stored VAPID key is in plain text (written by hand? If an earlier version stored it so, `countersign keys seal-legacy` seals it once)"
            ),
            Err(e) => anyhow::bail!("the stored VAPID key cannot be used: {e}"),
        };
        let vapid = VapidSignatureBuilder::from_base64_no_sub(&private)
            .map_err(|e| anyhow::anyhow!("the stored VAPID key is unusable: {e}"))?;
        let public_key = URL_SAFE_NO_PAD.encode(vapid.get_public_key());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Pusher {
            store,
            clock,
            vapid,
            public_key,
            contact,
            services,
            http,
            subscribers: RwLock::default(),
        })
    }

    /// Whether `approver_id` may have a subscription.
    fn has_subscribers(&self, approver_id: &str) -> bool {
        self.subscribers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(approver_id)
    }

    /// The person's subscribed browsers, oldest first (without their encryption secrets).
    pub async fn devices(&self, approver_id: &str) -> StoreResult<Vec<Device>> {
        Ok(self
            .store
            .push_subscriptions_of(approver_id)
            .await?
            .into_iter()
            .map(|row| Device {
                id: row.id,
                endpoint: row.endpoint,
                label: row.label,
                created_at: row.created_at,
                last_sent_at: row.last_sent_at,
                failures: row.failures,
            })
            .collect())
    }

    /// Adds a browser's subscription (or gives an endpoint already known to its new owner); it counts
    /// at once on this instance. Returns its id.
    pub async fn add_device(&self, device: NewDevice) -> StoreResult<String> {
        let row = PushSubscriptionRow {
            id: random_id(),
            approver_id: device.approver_id,
            endpoint: device.endpoint,
            p256dh: device.p256dh,
            auth: device.auth,
            label: device.label,
            created_at: self.clock.now(),
            last_sent_at: None,
            failures: 0,
        };
        let id = self.store.upsert_push_subscription(&row).await?;
        self.subscribed(&row.approver_id);
        Ok(id)
    }

    /// Removes one of the person's browsers; false when it was already gone.
    pub async fn remove_device(&self, approver_id: &str, id: &str) -> StoreResult<bool> {
        self.store.delete_push_subscription(approver_id, id).await
    }

    /// Replaces the subscription at `old_endpoint` (the push service renewed it) if `old_auth` is its
    /// `auth` secret (compared in constant time); false otherwise.
    pub async fn renew_device(
        &self,
        old_endpoint: &str,
        old_auth: &str,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
    ) -> StoreResult<bool> {
        use subtle::ConstantTimeEq;
        let Some(old) = self.store.push_subscription_at(old_endpoint).await? else {
            return Ok(false);
        };
        if !bool::from(old.auth.as_bytes().ct_eq(old_auth.as_bytes())) {
            tracing::warn!("a push subscription renewal did not prove the old subscription");
            return Ok(false);
        }
        self.store
            .renew_push_subscription(&old.id, old_endpoint, endpoint, p256dh, auth)
            .await
    }

    /// A subscription made on this instance counts at once.
    pub fn subscribed(&self, approver_id: &str) {
        self.subscribers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(approver_id.to_owned());
    }

    async fn refresh_subscribers(&self) {
        match self.store.push_subscribers().await {
            Ok(ids) => self
                .subscribers
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .extend(ids),
            Err(e) => tracing::warn!(error = %e, "push subscribers could not be read"),
        }
    }

    /// The browsers' `applicationServerKey`: the uncompressed P-256 point, base64url.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    pub fn services(&self) -> &PushServices {
        &self.services
    }

    /// Sends `payload` to every browser of `approver_id`; returns how many accepted it.
    pub async fn notify_approver(
        &self,
        approver_id: &str,
        payload: &PushPayload,
        ttl_secs: u32,
    ) -> usize {
        let subscriptions = match self.store.push_subscriptions_of(approver_id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "push subscriptions could not be read");
                return 0;
            }
        };
        let body = match serde_json::to_vec(payload) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "push payload could not be encoded");
                return 0;
            }
        };
        let sends = subscriptions
            .iter()
            .map(|s| self.deliver(s, &body, ttl_secs));
        futures::future::join_all(sends)
            .await
            .into_iter()
            .filter(|delivered| *delivered)
            .count()
    }

    /// One subscription, with retries; the outcome is recorded on the subscription.
    async fn deliver(&self, subscription: &PushSubscriptionRow, body: &[u8], ttl: u32) -> bool {
        let sent = super::with_retries(
            "push",
            ATTEMPTS,
            |e| matches!(e, PushError::Unavailable(_)),
            || self.send(subscription, body, ttl),
        )
        .await;
        match sent {
            Ok(()) => {
                let _ = self
                    .store
                    .push_delivered(&subscription.id, self.clock.now())
                    .await;
                tracing::info!(subscription = %subscription.id, "push notification delivered");
                true
            }
            Err(PushError::Gone(status)) => {
                // The browser unsubscribed or the subscription expired: it can never deliver again.
                tracing::info!(subscription = %subscription.id, status, "push subscription gone; forgotten");
                let _ = self
                    .store
                    .forget_push_endpoint(&subscription.endpoint)
                    .await;
                false
            }
            Err(e) => {
                tracing::warn!(subscription = %subscription.id, error = %e, "push failed; giving up");
                let _ = self.store.push_failed(&subscription.id).await;
                false
            }
        }
    }

    async fn send(
        &self,
        subscription: &PushSubscriptionRow,
        body: &[u8],
        ttl: u32,
    ) -> Result<(), PushError> {
        // Checked again at sending: the list of push services may have changed since subscribing.
        let endpoint = self
            .services
            .check(&subscription.endpoint)
            .map_err(|e| PushError::Build(e.into()))?;
        // RFC 8292 §2: `aud` is the push resource's origin, port included (the crate drops the port).
        let audience = endpoint.origin().ascii_serialization();
        let info = SubscriptionInfo::new(
            &subscription.endpoint,
            &subscription.p256dh,
            &subscription.auth,
        );
        let mut signature = self.vapid.clone().add_sub_info(&info);
        signature.add_claim("sub", self.contact.as_str());
        signature.add_claim("aud", audience);
        let signature = signature
            .build()
            .map_err(|e| PushError::Build(e.to_string()))?;
        let mut message = WebPushMessageBuilder::new(&info);
        message.set_payload(ContentEncoding::Aes128Gcm, body);
        message.set_vapid_signature(signature);
        message.set_ttl(ttl);
        message.set_urgency(Urgency::High);
        let message = message
            .build()
            .map_err(|e| PushError::Build(e.to_string()))?;
        let request = build_request::<Vec<u8>>(message);
        // To the URL as checked above, not as the crate re-parsed it.
        let mut outgoing = self.http.post(endpoint);
        for (name, value) in request.headers() {
            outgoing = outgoing.header(name.as_str(), value.as_bytes());
        }
        let response = outgoing
            .body(request.into_body())
            .send()
            .await
            .map_err(|e| PushError::Unavailable(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        match status {
            200..=299 => Ok(()),
            404 | 410 => Err(PushError::Gone(status)),
            429 | 500..=599 => Err(PushError::Unavailable(format!("HTTP {status}"))),
            _ => Err(PushError::Refused(status)),
        }
    }

    /// Keeps the subscriber set topped up and announces new requests (see `notify::run`).
    pub async fn start(
        self: Arc<Self>,
        horizon_ms: i64,
        events: broadcast::Receiver<RequestCreated>,
    ) {
        self.refresh_subscribers().await;
        let refresher = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SUBSCRIBERS_REFRESH);
            loop {
                tick.tick().await;
                refresher.refresh_subscribers().await;
            }
        });
        let (store, clock) = (self.store.clone(), self.clock.clone());
        super::run(self, store, clock, horizon_ms, events);
    }
}

impl super::Channel for Pusher {
    const NAME: &'static str = "push";
    const AUDIENCE: Audience = Audience::PushSubscribers;

    fn concerns(&self, approver_id: &str) -> bool {
        self.has_subscribers(approver_id)
    }

    async fn announce(self: Arc<Self>, event: RequestCreated) {
        let payload = PushPayload::for_request(&event);
        let ttl = ((event.expires_at - self.clock.now()) / 1000).clamp(0, 86_400);
        self.notify_approver(&event.approver_id, &payload, ttl as u32)
            .await;
    }
}

/// The associated data the VAPID private key is sealed under.
const VAPID_LABEL: &str = "vapid_keys/current";

/// A fresh P-256 key pair for VAPID: the private scalar (sealed) and the public point, base64url.
fn new_vapid_key(kek: &Kek, now: i64) -> anyhow::Result<VapidKeyRow> {
    let jwk = josekit::jws::ES256.generate_key_pair()?.to_jwk_key_pair();
    let field = |name: &str| -> anyhow::Result<Vec<u8>> {
        let value = jwk
            .parameter(name)
            .and_then(|v| v.as_str())
            .ok_or_else(|| anyhow::anyhow!("generated key lacks {name}"))?;
        Ok(URL_SAFE_NO_PAD.decode(value)?)
    };
    let mut point = vec![0x04];
    point.extend(field("x")?);
    point.extend(field("y")?);
    Ok(VapidKeyRow {
        private_key: kek.seal(VAPID_LABEL, &URL_SAFE_NO_PAD.encode(field("d")?)),
        public_key: URL_SAFE_NO_PAD.encode(point),
        created_at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_push_services_over_https_or_loopback() {
        let services = PushServices::parse(DEFAULT_PUSH_SERVICES);
        assert!(services
            .check("https://fcm.googleapis.com/fcm/send/abc")
            .is_ok());
        assert!(services
            .check("https://updates.push.services.mozilla.com/wpush/v2/x")
            .is_ok());
        assert!(services.check("https://web.push.apple.com/x").is_ok());
        assert!(services.check("http://fcm.googleapis.com/x").is_err());
        assert!(services
            .check("https://evil.example/fcm.googleapis.com")
            .is_err());
        assert!(services
            .check("https://fcm.googleapis.com.evil.example/")
            .is_err());
        assert!(services.check("https://u:p@fcm.googleapis.com/x").is_err());
        assert!(services.check("http://169.254.169.254/latest").is_err());
        assert!(services.check("https://fcm.googleapis.com:8443/x").is_err());
        let local = PushServices::parse("127.0.0.1");
        assert!(local.check("http://127.0.0.1:9000/push/1").is_ok());
        assert!(local.check("http://127.0.0.2:9000/push/1").is_err());
    }

    #[test]
    fn notifications_warn_of_what_they_cannot_mark() {
        let event = |target: &str| RequestCreated {
            shared: false,
            auth_req_id: "r".into(),
            approver_id: "a".into(),
            approver_email: "a@example.com".into(),
            approver_name: "A".into(),
            client_name: "Agent".into(),
            action: "Refund".into(),
            target: target.into(),
            expires_at: 0,
        };
        assert_eq!(
            PushPayload::for_request(&event("order 12")).body,
            "Agent asks: Refund \u{2014} order 12"
        );
        for disguised in ["p\u{0430}ypal", "\u{FF50}aypal", "order  12"] {
            assert!(PushPayload::for_request(&event(disguised))
                .body
                .starts_with("Warning: hidden or look-alike characters."));
        }
        assert!(PushPayload::for_request(&event("DE89 \u{05E9} 3704"))
            .body
            .starts_with("Warning: right-to-left letters."));
    }

    #[test]
    fn generated_vapid_keys_are_usable() {
        let kek = Kek::from_bytes([3; 32]);
        let key = new_vapid_key(&kek, 0).unwrap();
        let private = kek.open(VAPID_LABEL, &key.private_key).unwrap();
        let builder = VapidSignatureBuilder::from_base64_no_sub(&private).unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(builder.get_public_key()),
            key.public_key
        );
    }
}
