//! Web Push in the browser: the service worker (which shows notifications and makes the app
//! installable), the permission prompt and this browser's push subscription. Only the hydrated app
//! runs these; on the server they report "unsupported".

/// Where this browser stands with push notifications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushState {
    /// No service worker or Push API (an iPhone browser tab, not the installed app; old browsers).
    Unsupported,
    /// The person or their browser refused notification permission for this site.
    Blocked,
    Off,
    /// Subscribed; the subscription's endpoint identifies this browser to the server.
    On {
        endpoint: String,
    },
}

/// The service worker's script, at the root so its scope is the whole site.
pub const WORKER: &str = "/sw.js";

#[cfg(feature = "hydrate")]
mod browser {
    use js_sys::{Reflect, Uint8Array};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{
        Notification, NotificationPermission, PushManager, PushSubscription,
        PushSubscriptionOptionsInit, ServiceWorkerRegistration,
    };

    use super::{PushState, WORKER};

    fn explain(error: JsValue) -> String {
        let text = Reflect::get(&error, &"message".into())
            .ok()
            .and_then(|m| m.as_string())
            .unwrap_or_default();
        format!("The browser refused: {text}")
    }

    pub fn supported() -> bool {
        let Some(window) = web_sys::window() else {
            return false;
        };
        Reflect::has(&window.navigator(), &"serviceWorker".into()).unwrap_or(false)
            && Reflect::has(&window, &"PushManager".into()).unwrap_or(false)
            && Reflect::has(&window, &"Notification".into()).unwrap_or(false)
    }

    /// Registers the service worker (again: registering is idempotent) and waits until it is active.
    pub async fn registration() -> Result<ServiceWorkerRegistration, String> {
        let container = web_sys::window()
            .ok_or("No browser window.")?
            .navigator()
            .service_worker();
        JsFuture::from(container.register(WORKER))
            .await
            .map_err(explain)?;
        let ready = JsFuture::from(container.ready().map_err(explain)?)
            .await
            .map_err(explain)?;
        Ok(ready.unchecked_into())
    }

    fn push_manager(registration: &ServiceWorkerRegistration) -> Result<PushManager, String> {
        registration.push_manager().map_err(explain)
    }

    async fn subscription(manager: &PushManager) -> Result<Option<PushSubscription>, String> {
        let value = JsFuture::from(manager.get_subscription().map_err(explain)?)
            .await
            .map_err(explain)?;
        Ok((!value.is_null() && !value.is_undefined()).then(|| value.unchecked_into()))
    }

    pub async fn state() -> PushState {
        if !supported() {
            return PushState::Unsupported;
        }
        if Notification::permission() == NotificationPermission::Denied {
            return PushState::Blocked;
        }
        let Ok(registration) = registration().await else {
            return PushState::Unsupported;
        };
        match push_manager(&registration) {
            Ok(manager) => match subscription(&manager).await {
                Ok(Some(sub)) if Notification::permission() == NotificationPermission::Granted => {
                    PushState::On {
                        endpoint: sub.endpoint(),
                    }
                }
                _ => PushState::Off,
            },
            Err(_) => PushState::Unsupported,
        }
    }

    /// base64url (the VAPID key as the server sends it) → bytes, with the browser's decoder.
    fn key_bytes(base64url: &str) -> Result<Uint8Array, String> {
        let mut standard = base64url.replace('-', "+").replace('_', "/");
        while !standard.len().is_multiple_of(4) {
            standard.push('=');
        }
        let binary = web_sys::window()
            .ok_or("No browser window.")?
            .atob(&standard)
            .map_err(explain)?;
        let bytes: Vec<u8> = binary.chars().map(|c| c as u32 as u8).collect();
        Ok(Uint8Array::from(bytes.as_slice()))
    }

    /// Asks for permission and subscribes; returns the subscription as JSON for the server.
    pub async fn turn_on(public_key: &str) -> Result<String, String> {
        let permission = JsFuture::from(Notification::request_permission().map_err(explain)?)
            .await
            .map_err(explain)?;
        if permission.as_string().as_deref() != Some("granted") {
            return Err("Notifications were not allowed. You can allow them for this site in the browser's settings.".into());
        }
        let manager = push_manager(&registration().await?)?;
        let options = PushSubscriptionOptionsInit::new();
        options.set_user_visible_only(true);
        options.set_application_server_key(&key_bytes(public_key)?.into());
        let subscribed = JsFuture::from(manager.subscribe_with_options(&options).map_err(explain)?)
            .await
            .map_err(explain)?;
        js_sys::JSON::stringify(&subscribed)
            .map(String::from)
            .map_err(explain)
    }

    /// Unsubscribes this browser; returns the endpoint it had, for the server to forget.
    pub async fn turn_off() -> Result<Option<String>, String> {
        let manager = push_manager(&registration().await?)?;
        let Some(sub) = subscription(&manager).await? else {
            return Ok(None);
        };
        let endpoint = sub.endpoint();
        JsFuture::from(sub.unsubscribe().map_err(explain)?)
            .await
            .map_err(explain)?;
        Ok(Some(endpoint))
    }
}

/// Registers the service worker on every page load: it makes the app installable and is ready to
/// show notifications.
pub fn register_worker() {
    #[cfg(feature = "hydrate")]
    if browser::supported() {
        leptos::task::spawn_local(async {
            if let Err(e) = browser::registration().await {
                leptos::logging::warn!("service worker not registered: {e}");
            }
        });
    }
}

pub async fn state() -> PushState {
    #[cfg(feature = "hydrate")]
    {
        browser::state().await
    }
    #[cfg(not(feature = "hydrate"))]
    {
        PushState::Unsupported
    }
}

/// Turns notifications on for this browser: permission prompt, then a subscription (JSON).
pub async fn turn_on(public_key: &str) -> Result<String, String> {
    #[cfg(feature = "hydrate")]
    {
        browser::turn_on(public_key).await
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = public_key;
        Err("Notifications need the page's script.".into())
    }
}

/// Turns notifications off for this browser; the endpoint it had, if any.
pub async fn turn_off() -> Result<Option<String>, String> {
    #[cfg(feature = "hydrate")]
    {
        browser::turn_off().await
    }
    #[cfg(not(feature = "hydrate"))]
    {
        Err("Notifications need the page's script.".into())
    }
}
