//! Time left until a request expires, ticking in the browser. Computed against the server's clock
//! (the page carries the server's "now"), so a device with a wrong clock still counts correctly.
use leptos::prelude::*;

/// "4:59", or "expired".
pub fn format_left(millis: i64) -> String {
    if millis <= 0 {
        return "expired".into();
    }
    let secs = millis / 1000;
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

/// A signal of the milliseconds left until `expires_at`, given the server's `now` at page load.
pub fn time_left(expires_at: i64, server_now: i64) -> ReadSignal<i64> {
    let (left, set_left) = signal(expires_at - server_now);
    #[cfg(feature = "hydrate")]
    {
        let started = js_sys::Date::now() as i64;
        let handle = set_interval_with_handle(
            move || set_left.set(expires_at - server_now - (js_sys::Date::now() as i64 - started)),
            std::time::Duration::from_millis(500),
        );
        if let Ok(handle) = handle {
            on_cleanup(move || handle.clear());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = set_left;
    left
}

#[component]
pub fn Countdown(expires_at: i64, now: i64) -> impl IntoView {
    let left = time_left(expires_at, now);
    view! {
        <span class="countdown" class:urgent=move || left.get() < 60_000 role="timer" aria-live="off">
            {move || format_left(left.get())}
        </span>
    }
}
