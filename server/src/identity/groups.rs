//! Groups of approvers (on-call rotations, teams). An agent addresses a group only if an admin
//! allowed it to (`client_groups`); a request to a group is addressed to its enabled members at
//! that moment, and the first of them to decide settles it (or, under a policy, each counts once
//! toward its quorum).
use crate::store::{groups::GroupRow, Store, StoreError};

/// The prefix that makes a `login_hint` name a group: `group:payments-oncall`.
pub const HINT_PREFIX: &str = "group:";

/// Longest group name.
const MAX_NAME: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub name: String,
}

impl Group {
    fn from_row(row: GroupRow) -> Group {
        Group {
            id: row.id,
            name: row.name,
        }
    }
}

/// A group's name as a hint spells it: lower-case letters, digits, `-`, `_` and `.`, starting with
/// a letter or digit; anything else is refused with the reason.
pub fn check_name(name: &str) -> Result<&str, String> {
    let name = name.trim();
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("A group name has 1 to {MAX_NAME} characters."));
    }
    if !name.chars().all(allowed) || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(
            "A group name uses lower-case letters, digits, '-', '_' and '.', and starts with a letter or digit."
                .into(),
        );
    }
    Ok(name)
}

pub async fn by_name(store: &Store, name: &str) -> Result<Option<Group>, StoreError> {
    Ok(store.group_by_name(name).await?.map(Group::from_row))
}

pub async fn by_id(store: &Store, id: &str) -> Result<Option<Group>, StoreError> {
    Ok(store.group(id).await?.map(Group::from_row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_plain_slugs() {
        assert_eq!(check_name(" payments-oncall "), Ok("payments-oncall"));
        assert_eq!(check_name("team.eu_2"), Ok("team.eu_2"));
        for bad in ["", "Payments", "-x", "a b", "grp:x", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
