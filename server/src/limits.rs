//! Limits per client address for what anyone may call without signing in: the sign-in and
//! enrollment ceremonies (each start writes a session row), and failed backchannel requests (each
//! may be a guess). Over the limit, the answer is 429 with `Retry-After`. The counts live in memory,
//! per instance: a limit that several instances share would need a write per request.
use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    num::NonZeroU32,
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::{ConnectInfo, State},
    http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::oauth::error::{ErrorCode, OAuthError};

/// The server functions a signed-out browser calls to sign in or enroll.
const CEREMONY_PATHS: &[&str] = &[
    "/api/start_sign_in",
    "/api/finish_sign_in",
    "/api/invitation",
    "/api/start_enrollment",
    "/api/finish_enrollment",
];

/// After this many checks, forget addresses that have gone quiet.
const SWEEP_EVERY: u32 = 4096;

/// How many calls per minute an address may make, per kind (0: no limit).
#[derive(Clone, Copy, Debug)]
pub struct AddressQuotas {
    pub ceremonies_per_minute: u32,
    pub failures_per_minute: u32,
    /// Behind a reverse proxy: the client is the last address it adds to `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
}

pub struct AddressLimits {
    ceremonies: Option<DefaultKeyedRateLimiter<IpAddr>>,
    failures: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Addresses whose failures ran out, and until when their backchannel requests are refused.
    refused: Mutex<HashMap<IpAddr, Instant>>,
    trust_forwarded_for: bool,
    checks: AtomicU32,
}

/// A limiter of `per_minute` calls, all of which may come at once; None for no limit.
fn limiter(per_minute: u32) -> Option<DefaultKeyedRateLimiter<IpAddr>> {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

impl AddressLimits {
    pub fn new(quotas: AddressQuotas) -> AddressLimits {
        AddressLimits {
            ceremonies: limiter(quotas.ceremonies_per_minute),
            failures: limiter(quotas.failures_per_minute),
            refused: Mutex::default(),
            trust_forwarded_for: quotas.trust_forwarded_for,
            checks: AtomicU32::new(0),
        }
    }

    /// The address a request counts against: the peer, or the proxy's word for it when trusted.
    /// IPv6 addresses count by their /64, which one subscriber usually holds whole.
    fn address(&self, request: &Request<Body>) -> IpAddr {
        let forwarded = self
            .trust_forwarded_for
            .then(|| forwarded_for(request.headers()))
            .flatten();
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let ip = forwarded
            .or(peer)
            .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let [a, b, c, d, ..] = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
                }
            },
            v4 => v4,
        }
    }

    /// Now and then, forget addresses that have gone quiet, so a flood of addresses cannot fill memory.
    fn sweep_now_and_then(&self) {
        if !self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
        {
            return;
        }
        for limiter in [&self.ceremonies, &self.failures].into_iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let now = Instant::now();
        self.refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, until| *until > now);
    }
}

/// The last address in `X-Forwarded-For`: the one the trusted proxy saw.
fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .and_then(|last| last.trim().parse().ok())
}

/// 429 with how long to wait, in whole seconds (RFC 9110 §10.2.3), and a body in the endpoint's
/// language: the agent API's own error response, text for the pages.
fn too_many(wait: Duration, oauth: bool) -> Response {
    let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let mut response = if oauth {
        OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            format!("too many failed requests from this address; retry in {secs} s"),
        )
        .into_response()
    } else {
        (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts from this address. Wait a minute, then try again.",
        )
            .into_response()
    };
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

/// Counts each sign-in and enrollment call against its address.
pub async fn limit_ceremonies(
    State(limits): State<Arc<AddressLimits>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    if let Some(limiter) = &limits.ceremonies {
        if request.method() == Method::POST && CEREMONY_PATHS.contains(&request.uri().path()) {
            limits.sweep_now_and_then();
            if let Err(not_until) = limiter.check_key(&limits.address(&request)) {
                let wait = not_until.wait_time_from(limiter.clock().now());
                return too_many(wait, false);
            }
        }
    }
    next.run(request).await
}

/// Counts each refused `/bc-authorize` against its address; once an address's failures run out, its
/// requests are refused unread until the quota allows one again. Successful requests never count.
pub async fn limit_failures(
    State(limits): State<Arc<AddressLimits>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let Some(limiter) = &limits.failures else {
        return next.run(request).await;
    };
    limits.sweep_now_and_then();
    let address = limits.address(&request);
    let refused_until = limits
        .refused
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&address)
        .copied();
    if let Some(until) = refused_until {
        let now = Instant::now();
        if until > now {
            return too_many(until - now, true);
        }
    }
    let response = next.run(request).await;
    if matches!(
        response.status(),
        StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
    ) {
        if let Err(not_until) = limiter.check_key(&address) {
            let wait = not_until.wait_time_from(limiter.clock().now());
            limits
                .refused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(address, Instant::now() + wait);
        }
    }
    response
}
