//! The account page's notification settings: which browsers of the signed-in person receive Web Push,
//! opting in and out, and a test message.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use app::{
    model::{PushDeviceView, PushDevicesView},
    service::{NotificationService, SignedIn, UiError, UserResult},
};
use async_trait::async_trait;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::Deserialize;

use super::identity::internal;
use crate::notify::push::{NewDevice, PushPayload, Pusher};

/// A person may keep this many browsers subscribed; more is a sign of something wrong.
const MAX_DEVICES: usize = 20;

/// Test notifications per person at most this often: they go through the push services under the
/// deployment's one VAPID key, which a flood could get throttled.
const TEST_COOLDOWN: Duration = Duration::from_secs(10);

pub struct PushDevices {
    pusher: Arc<Pusher>,
    last_tests: Mutex<HashMap<String, Instant>>,
}

/// The browser's `PushSubscription.toJSON()`.
#[derive(Deserialize)]
pub struct BrowserSubscription {
    endpoint: String,
    keys: SubscriptionKeys,
}

#[derive(Deserialize)]
struct SubscriptionKeys {
    p256dh: String,
    auth: String,
}

impl PushDevices {
    pub fn new(pusher: Arc<Pusher>) -> PushDevices {
        PushDevices {
            pusher,
            last_tests: Mutex::default(),
        }
    }

    /// A subscription the server may deliver to: a known push service, keys as RFC 8291 needs.
    fn acceptable(&self, subscription: &BrowserSubscription) -> bool {
        if let Err(why) = self.pusher.services().check(&subscription.endpoint) {
            tracing::warn!(why, "push subscription refused");
            return false;
        }
        keys_are_well_formed(&subscription.keys)
    }

    /// The service worker's report that the push service replaced this browser's subscription
    /// (`pushsubscriptionchange`). No session is needed, the worker may have none: the proof is the
    /// old subscription's `auth` secret (RFC 8291), which only the browser and this server hold. The
    /// endpoint alone is no proof: the push service knows it, and so may anyone who saw it in a log.
    pub async fn renew(
        &self,
        old_endpoint: &str,
        old_auth: &str,
        fresh: BrowserSubscription,
    ) -> Result<(), RenewError> {
        if !self.acceptable(&fresh) {
            return Err(RenewError::Unacceptable);
        }
        match self
            .pusher
            .renew_device(
                old_endpoint,
                old_auth,
                &fresh.endpoint,
                &fresh.keys.p256dh,
                &fresh.keys.auth,
            )
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(RenewError::Unknown),
            Err(e) => {
                tracing::error!(error = %e, "push subscription could not be renewed");
                Err(RenewError::Storage)
            }
        }
    }
}

pub enum RenewError {
    /// The new subscription names an unknown push service or malformed keys.
    Unacceptable,
    /// No subscription has the old endpoint with that `auth` secret.
    Unknown,
    Storage,
}

#[derive(Deserialize)]
pub struct Renewal {
    old_endpoint: String,
    /// The old subscription's `auth` secret (base64url), as `PushSubscription.toJSON()` gives it.
    old_auth: String,
    subscription: BrowserSubscription,
}

/// `POST /push/renew` (JSON), from the service worker: 204 when the subscription moved, 404 when the
/// old endpoint is unknown or the old `auth` secret does not match (one answer for both), 400 when
/// the new one is unacceptable.
pub async fn renew_handler(
    devices: Arc<PushDevices>,
    axum::Json(renewal): axum::Json<Renewal>,
) -> axum::http::StatusCode {
    use axum::http::StatusCode;
    match devices
        .renew(
            &renewal.old_endpoint,
            &renewal.old_auth,
            renewal.subscription,
        )
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT,
        Err(RenewError::Unknown) => StatusCode::NOT_FOUND,
        Err(RenewError::Storage) => StatusCode::SERVICE_UNAVAILABLE,
        Err(RenewError::Unacceptable) => StatusCode::BAD_REQUEST,
    }
}

/// The subscription's keys must be what RFC 8291 needs: an uncompressed P-256 point and a 16-byte
/// authentication secret.
fn keys_are_well_formed(keys: &SubscriptionKeys) -> bool {
    let p256dh = URL_SAFE_NO_PAD.decode(keys.p256dh.trim_end_matches('='));
    let auth = URL_SAFE_NO_PAD.decode(keys.auth.trim_end_matches('='));
    matches!((p256dh, auth), (Ok(p), Ok(a)) if p.len() == 65 && p[0] == 0x04 && a.len() == 16)
}

/// "Chrome on Android" from a User-Agent; good enough to tell one's own devices apart.
pub fn device_label(user_agent: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(token, _)| user_agent.contains(token))
    .map_or("A browser", |(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(token, _)| user_agent.contains(token))
    .map(|(_, name)| *name);
    match system {
        Some(system) => format!("{browser} on {system}"),
        None => browser.to_owned(),
    }
}

#[async_trait]
impl NotificationService for PushDevices {
    async fn push_devices(
        &self,
        user: &SignedIn,
        this_endpoint: Option<String>,
    ) -> UserResult<PushDevicesView> {
        let rows = self
            .pusher
            .devices(&user.approver_id)
            .await
            .map_err(internal)?;
        Ok(PushDevicesView {
            public_key: self.pusher.public_key().to_owned(),
            devices: rows
                .into_iter()
                .map(|row| PushDeviceView {
                    this_device: this_endpoint.as_deref() == Some(row.endpoint.as_str()),
                    id: row.id,
                    label: row.label,
                    created_at: row.created_at,
                    last_sent_at: row.last_sent_at,
                    failures: row.failures,
                })
                .collect(),
        })
    }

    async fn subscribe_push(
        &self,
        user: &SignedIn,
        subscription: String,
        user_agent: Option<String>,
    ) -> UserResult<()> {
        let refused = || {
            UiError::Invalid(
                "This browser's push subscription cannot be used. Try another browser.".into(),
            )
        };
        let subscription: BrowserSubscription =
            serde_json::from_str(&subscription).map_err(|_| refused())?;
        if !self.acceptable(&subscription) {
            return Err(refused());
        }
        let existing = self
            .pusher
            .devices(&user.approver_id)
            .await
            .map_err(internal)?;
        let known = existing.iter().any(|s| s.endpoint == subscription.endpoint);
        if !known && existing.len() >= MAX_DEVICES {
            return Err(UiError::Conflict(format!(
                "You already receive notifications on {MAX_DEVICES} devices. Remove one first."
            )));
        }
        let device = NewDevice {
            approver_id: user.approver_id.clone(),
            endpoint: subscription.endpoint,
            p256dh: subscription.keys.p256dh,
            auth: subscription.keys.auth,
            label: device_label(user_agent.as_deref().unwrap_or_default()),
        };
        let id = self.pusher.add_device(device).await.map_err(internal)?;
        tracing::info!(approver_id = %user.approver_id, subscription = %id, "push notifications turned on");
        Ok(())
    }

    async fn unsubscribe_push(
        &self,
        user: &SignedIn,
        id: Option<String>,
        endpoint: Option<String>,
    ) -> UserResult<()> {
        let id = match (id, endpoint) {
            (Some(id), _) => Some(id),
            (None, Some(endpoint)) => self
                .pusher
                .devices(&user.approver_id)
                .await
                .map_err(internal)?
                .into_iter()
                .find(|s| s.endpoint == endpoint)
                .map(|s| s.id),
            (None, None) => None,
        };
        // Removing what is already gone is not an error: the person's intent holds either way.
        if let Some(id) = id {
            self.pusher
                .remove_device(&user.approver_id, &id)
                .await
                .map_err(internal)?;
        }
        Ok(())
    }

    async fn test_push(&self, user: &SignedIn) -> UserResult<usize> {
        {
            let mut last = self.last_tests.lock().unwrap_or_else(|e| e.into_inner());
            if last
                .get(&user.approver_id)
                .is_some_and(|at| at.elapsed() < TEST_COOLDOWN)
            {
                return Err(UiError::TooMany(
                    "A test notification was just sent. Wait a few seconds.".into(),
                ));
            }
            // Only cooldowns still running matter: the map stays as small as the last few seconds.
            last.retain(|_, at| at.elapsed() < TEST_COOLDOWN);
            last.insert(user.approver_id.clone(), Instant::now());
        }
        let payload = PushPayload {
            title: "Countersign notifications work".into(),
            body: "Requests for your approval will appear like this.".into(),
            url: "/inbox".into(),
            tag: "test".into(),
        };
        let delivered = self
            .pusher
            .notify_approver(&user.approver_id, &payload, 300)
            .await;
        if delivered == 0 {
            return Err(UiError::Conflict(
                "No device accepted the test notification.".into(),
            ));
        }
        Ok(delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_labels() {
        assert_eq!(
            device_label("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36"),
            "Chrome on Android"
        );
        assert_eq!(
            device_label("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"),
            "Safari on iPhone"
        );
        assert_eq!(device_label(""), "A browser");
    }

    #[test]
    fn subscription_keys_must_fit_rfc_8291() {
        let good = SubscriptionKeys {
            p256dh: URL_SAFE_NO_PAD.encode([4u8; 65]),
            auth: URL_SAFE_NO_PAD.encode([1u8; 16]),
        };
        assert!(keys_are_well_formed(&good));
        let short = SubscriptionKeys {
            p256dh: URL_SAFE_NO_PAD.encode([4u8; 33]),
            auth: good.auth.clone(),
        };
        assert!(!keys_are_well_formed(&short));
    }
}
