//! Identifiers of a request: the `auth_req_id` the agent holds, and the page reference the approver's
//! links carry instead.
use crate::clock::Millis;

/// CIBA §7.3: opaque and unguessable: 256 random bits. A millisecond timestamp in hex goes in front so
/// that new ids sort after old ones: inserts then append to the primary key instead of touching a random
/// page each, which is most of the cost of a write burst. The time it reveals is the client's own.
pub fn new_auth_req_id(now: Millis) -> String {
    format!(
        "{now:012x}{}",
        crate::secrets::base64url(&crate::secrets::random_bytes::<32>())
    )
}

/// The request page's reference to a request: the auth_req_id's time prefix and 132 bits of a one-way
/// hash of it. Links in notifications, browser history and logs then never carry the handle the agent
/// redeems at the token endpoint, and no extra column or index burdens the insert path: a reference is
/// resolved among the signed-in approver's requests from that millisecond (`approval::Approvals`).
pub fn page_ref(auth_req_id: &str) -> String {
    let prefix = auth_req_id.get(..12).unwrap_or_default();
    let hash =
        crate::secrets::sha256(format!("countersign/request-page/v1:{auth_req_id}").as_bytes());
    format!("{prefix}{}", &crate::secrets::base64url(&hash)[..22])
}

/// The creation time (Unix ms) a page reference names, if it is well-formed.
pub fn page_ref_time(page_ref: &str) -> Option<Millis> {
    if page_ref.len() != 34 || !page_ref.is_ascii() {
        return None;
    }
    i64::from_str_radix(&page_ref[..12], 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_refs_name_the_millisecond_but_not_the_auth_req_id() {
        let id = new_auth_req_id(1_795_000_000_123);
        let reference = page_ref(&id);
        assert_eq!(reference.len(), 34);
        assert_eq!(page_ref_time(&reference), Some(1_795_000_000_123));
        assert_eq!(reference, page_ref(&id), "stable");
        assert_ne!(reference, page_ref(&new_auth_req_id(1_795_000_000_123)));
        assert!(!reference.contains(&id[12..20]));
        assert_eq!(page_ref_time("short"), None);
    }
}
