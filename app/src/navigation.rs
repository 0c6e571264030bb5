//! Where a person goes around sign-in: a protected page sends them to the sign-in page with the way
//! back, and the sign-in page follows it only to a path on this site (never an open redirect).
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Where a signed-in person lands when nothing else was asked for.
pub const HOME: &str = "/inbox";

/// The query parameter that carries the way back.
pub const NEXT: &str = "next";

/// Unreserved characters (RFC 3986 §2.3) stay readable; everything else in the way back is escaped.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// The sign-in page, asked to return to `path` (a path with its query) afterwards.
pub fn sign_in_then(path: &str) -> String {
    match local_path(path) {
        Some(path) if path != HOME => {
            format!("/sign-in?{NEXT}={}", utf8_percent_encode(path, QUERY_VALUE))
        }
        _ => "/sign-in".to_owned(),
    }
}

/// `next` if it is a path on this site, else `None`. Browsers read `//host` and `/\host` as another
/// site, so only a single `/` followed by something else is accepted; control characters and
/// whitespace, which browsers strip or mangle before resolving, are refused too, and so are dot
/// segments (plain or percent-encoded), which resolve `/..//host` into `//host`.
pub fn local_path(next: &str) -> Option<&str> {
    let rest = next.strip_prefix('/')?;
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    let dot_segment = path.split(['/', '\\']).any(|segment| {
        matches!(
            segment.to_ascii_lowercase().replace("%2e", ".").as_str(),
            "." | ".."
        )
    });
    let refused = rest.starts_with(['/', '\\'])
        || dot_segment
        || next.len() > 2048
        || next.chars().any(|c| c.is_control() || c.is_whitespace());
    (!refused).then_some(next)
}

/// Where to go after signing in, given the sign-in page's `next` parameter.
pub fn after_sign_in(next: Option<&str>) -> &str {
    next.and_then(local_path).unwrap_or(HOME)
}

/// `pairs` as a URL query (`status=denied&q=refund%20order`), every value escaped.
pub fn encode_query(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", utf8_percent_encode(value, QUERY_VALUE)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_site_are_followed() {
        for ok in [
            "/requests/abc",
            "/account",
            "/inbox?x=1",
            "/requests/a%2Fb",
            "/requests/a..b",
            "/inbox?back=../x",
        ] {
            assert_eq!(after_sign_in(Some(ok)), ok);
        }
        for refused in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "javascript:alert(1)",
            "evil.example",
            "/\t/evil.example",
            "/ /x",
            "/..//evil.example",
            "/%2e%2e//evil.example",
            "/x/..//evil.example",
            "/x/%2E/y",
            "",
        ] {
            assert_eq!(after_sign_in(Some(refused)), HOME, "{refused:?}");
        }
        assert_eq!(after_sign_in(None), HOME);
    }

    #[test]
    fn the_way_back_is_escaped_into_the_query() {
        assert_eq!(
            sign_in_then("/requests/r1?tab=a&b=c"),
            "/sign-in?next=/requests/r1%3Ftab%3Da%26b%3Dc"
        );
        assert_eq!(sign_in_then("/inbox"), "/sign-in");
        assert_eq!(sign_in_then("//evil.example"), "/sign-in");
    }
}
