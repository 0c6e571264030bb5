//! Where Countersign may send a client's notifications (CIBA §10.2 ping, §10.3 push): an https URL with
//! a verified certificate, on a public address. The address is checked when the client is registered
//! and again at every connection, on the address actually resolved then (so a name that later resolves
//! to 127.0.0.1 or 169.254.169.254, DNS rebinding, reaches nothing). For development and tests only,
//! `COUNTERSIGN_ALLOW_LOOPBACK_NOTIFY` allows loopback endpoints over http or self-signed https.
use std::net::{IpAddr, SocketAddr};

use url::{Host, Url};

/// The environment variable (and `serve` flag) that allows loopback endpoints.
pub const ALLOW_LOOPBACK_ENV: &str = "COUNTERSIGN_ALLOW_LOOPBACK_NOTIFY";

/// Which endpoints are allowed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointPolicy {
    pub allow_loopback: bool,
}

impl EndpointPolicy {
    /// The policy the environment asks for (`COUNTERSIGN_ALLOW_LOOPBACK_NOTIFY=1`; read as `serve`
    /// reads its flag: anything but empty, 0, n, no, f, false or off turns it on).
    pub fn from_env() -> EndpointPolicy {
        let falsey = |v: &str| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "" | "0" | "n" | "no" | "f" | "false" | "off"
            )
        };
        EndpointPolicy {
            allow_loopback: std::env::var(ALLOW_LOOPBACK_ENV).is_ok_and(|v| !falsey(&v)),
        }
    }

    /// The URL's form: https (http only to loopback when allowed), no credentials, no fragment.
    pub fn check_url(&self, raw: &str) -> Result<Url, String> {
        let url = Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials".into());
        }
        if url.fragment().is_some() {
            return Err("must not have a fragment".into());
        }
        let loopback = is_loopback_host(&url);
        match url.scheme() {
            "https" => {}
            "http" if loopback && self.allow_loopback => {}
            "http" if loopback => {
                return Err(format!(
                    "must use https (http to this machine only with {ALLOW_LOOPBACK_ENV}=1, for development)"
                ))
            }
            _ => return Err("must use https".into()),
        }
        Ok(url)
    }

    /// Whether the server may connect to `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        is_public(ip) || (self.allow_loopback && ip.is_loopback())
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The host's addresses (an IP literal is its own).
pub async fn resolve(url: &Url) -> Result<Vec<SocketAddr>, String> {
    let port = url.port_or_known_default().ok_or("no port")?;
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(Host::Domain(d)) => tokio::net::lookup_host((d, port))
            .await
            .map_err(|e| format!("cannot be resolved: {e}"))?
            .collect(),
        None => return Err("has no host".into()),
    };
    if addrs.is_empty() {
        return Err("resolves to no address".into());
    }
    Ok(addrs)
}

/// Globally reachable unicast: not loopback, private, link-local, shared (CGNAT), documentation,
/// benchmarking, multicast, reserved or unspecified; IPv4-mapped IPv6 addresses are judged as IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
                || first == 0x0064 && v6.segments()[1] == 0xff9b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_need_https_except_to_loopback_when_allowed() {
        let strict = EndpointPolicy::default();
        let dev = EndpointPolicy {
            allow_loopback: true,
        };
        assert!(strict.check_url("https://agent.example/cb").is_ok());
        assert!(strict.check_url("http://agent.example/cb").is_err());
        assert!(strict.check_url("http://127.0.0.1:9000/cb").is_err());
        assert!(dev.check_url("http://127.0.0.1:9000/cb").is_ok());
        assert!(dev.check_url("http://localhost:9000/cb").is_ok());
        assert!(dev.check_url("http://10.0.0.1/cb").is_err());
        assert!(strict.check_url("https://u:p@agent.example/cb").is_err());
        assert!(strict.check_url("https://agent.example/cb#x").is_err());
        assert!(!strict.allows("127.0.0.1".parse().unwrap()));
        assert!(dev.allows("127.0.0.1".parse().unwrap()));
        assert!(!dev.allows("192.168.0.1".parse().unwrap()));
    }
}
