//! The admin log as a hash chain. Each entry's hash covers every field and the hash of the entry
//! before it, so an entry edited, removed or slipped in beneath the database's append-only triggers
//! breaks the chain, and a removed tail is seen against the checkpoint, which names the head.
use crate::{
    secrets::{hex, sha256},
    store::{admin_log::AdminEntry, admin_log::AdminLogRow, decisions::GENESIS_HASH},
};

/// Domain separation: an admin log hash is never another chain's.
const TAG: &[u8] = b"countersign/admin-log/v1\0";

/// The hash of `entry` following the entry whose hash is `prev`. Each field is length-prefixed (an
/// absent one is a distinct marker), so no two different entries share an input.
pub fn entry_hash(entry: &AdminEntry<'_>, prev: &str) -> String {
    let mut input = TAG.to_vec();
    input.extend_from_slice(&entry.at.to_be_bytes());
    let fields = [
        Some(entry.admin_id),
        Some(entry.admin_email),
        Some(entry.action),
        Some(entry.subject),
        entry.detail,
        entry.authorisation,
        Some(prev),
    ];
    for field in fields {
        match field {
            Some(text) => {
                input.push(1);
                input.extend_from_slice(&(text.len() as u64).to_be_bytes());
                input.extend_from_slice(text.as_bytes());
            }
            None => input.push(0),
        }
    }
    hex(&sha256(&input))
}

/// What is wrong with the chain, oldest first: (entry seq, problem). Entries from before the chain
/// (no hash) may only come first.
pub fn chain_problems(rows: &[AdminLogRow]) -> Vec<(i64, &'static str)> {
    let mut problems = Vec::new();
    let mut prev: Option<&str> = None;
    for row in rows {
        let (Some(prev_hash), Some(hash)) = (&row.prev_hash, &row.entry_hash) else {
            if prev.is_some() {
                problems.push((row.seq, "an entry without a hash follows the chained ones"));
            }
            continue;
        };
        if prev_hash != prev.unwrap_or(GENESIS_HASH) {
            problems.push((row.seq, "the entry does not follow the one before it"));
        }
        let entry = AdminEntry {
            at: row.at,
            admin_id: &row.admin_id,
            admin_email: &row.admin_email,
            action: &row.action,
            subject: &row.subject,
            detail: row.detail.as_deref(),
            authorisation: row.authorisation.as_deref(),
        };
        if entry_hash(&entry, prev_hash) != *hash {
            problems.push((row.seq, "the entry's content does not match its hash"));
        }
        prev = Some(hash);
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, action: &str, prev: &str) -> AdminLogRow {
        let entry = AdminEntry {
            at: 1000 + seq,
            admin_id: "a",
            admin_email: "a@example.com",
            action,
            subject: "s",
            detail: None,
            authorisation: None,
        };
        AdminLogRow {
            seq,
            at: entry.at,
            admin_id: "a".into(),
            admin_email: "a@example.com".into(),
            action: action.into(),
            subject: "s".into(),
            detail: None,
            authorisation: None,
            prev_hash: Some(prev.into()),
            entry_hash: Some(entry_hash(&entry, prev)),
        }
    }

    #[test]
    fn an_edited_removed_or_unhashed_entry_breaks_the_chain() {
        let first = row(1, "one", GENESIS_HASH);
        let second = row(2, "two", first.entry_hash.as_deref().unwrap());
        let third = row(3, "three", second.entry_hash.as_deref().unwrap());
        let chain = vec![first.clone(), second.clone(), third.clone()];
        assert!(chain_problems(&chain).is_empty());

        let mut edited = chain.clone();
        edited[1].action = "something else".into();
        assert_eq!(
            chain_problems(&edited),
            vec![(2, "the entry's content does not match its hash")]
        );
        assert_eq!(
            chain_problems(&[first.clone(), third.clone()]),
            vec![(3, "the entry does not follow the one before it")]
        );
        let mut unhashed = second.clone();
        unhashed.entry_hash = None;
        assert_eq!(
            chain_problems(&[first, unhashed]),
            vec![(2, "an entry without a hash follows the chained ones")]
        );
    }

    #[test]
    fn absent_and_empty_fields_hash_differently() {
        let mut entry = AdminEntry {
            at: 1,
            admin_id: "a",
            admin_email: "e",
            action: "x",
            subject: "s",
            detail: None,
            authorisation: None,
        };
        let absent = entry_hash(&entry, GENESIS_HASH);
        entry.detail = Some("");
        assert_ne!(absent, entry_hash(&entry, GENESIS_HASH));
    }
}
