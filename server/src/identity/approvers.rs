//! Approvers: who an agent's `login_hint` names, and the optional user code they require (CIBA §7.1).
use std::{collections::HashMap, sync::RwLock};

use serde::Serialize;

use crate::{
    clock::Millis,
    secrets::{random_id, sha256},
    store::{approvers::ApproverRow, Store, StoreError},
};
use subtle::ConstantTimeEq;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Approver,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// A role as a row stores it: anything but an admin's is an approver's.
    pub fn of_stored(stored: &str) -> Role {
        if stored == Role::Admin.as_str() {
            Role::Admin
        } else {
            Role::Approver
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Approver {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub requires_user_code: bool,
    pub disabled: bool,
    #[serde(skip)]
    user_code_hash: Option<String>,
}

impl Approver {
    fn from_row(row: ApproverRow) -> Approver {
        Approver {
            role: Role::of_stored(&row.role),
            requires_user_code: row.user_code_hash.is_some(),
            disabled: row.disabled != 0,
            user_code_hash: row.user_code_hash,
            id: row.id,
            email: row.email,
            name: row.name,
        }
    }

    /// Constant-time check of a `user_code` against the approver's.
    pub fn user_code_matches(&self, code: &str) -> bool {
        let Some(stored) = &self.user_code_hash else {
            return false;
        };
        let digest = user_code_digest(&self.id, code);
        digest.as_bytes().ct_eq(stored.as_bytes()).into()
    }
}

/// User codes are short and human-chosen, so the digest is salted with the approver id: equal codes of
/// two approvers never share a stored value.
fn user_code_digest(approver_id: &str, code: &str) -> String {
    crate::secrets::hex(&sha256(
        format!("countersign-user-code:{approver_id}:{code}").as_bytes(),
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum ApproverError {
    #[error("{0}")]
    Invalid(String),
    #[error("an approver with this email already exists")]
    Duplicate,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ApproverError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => ApproverError::Duplicate,
            other => ApproverError::Store(other),
        }
    }
}

/// Emails compare case-insensitively; they are stored trimmed and lower-cased.
pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

pub struct NewApprover {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub user_code: Option<String>,
}

/// Checks a new approver's (normalised) email and name; the message is fit to show.
pub fn validate_new(email: &str, name: &str) -> Result<(), String> {
    if !valid_email(email) {
        return Err(format!("{email:?} is not an email address"));
    }
    if name.trim().is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err("the name must be 1 to 100 printable characters".into());
    }
    Ok(())
}

pub async fn add(store: &Store, new: NewApprover, now: Millis) -> Result<Approver, ApproverError> {
    let email = normalise_email(&new.email);
    let name = new.name.trim();
    validate_new(&email, name).map_err(ApproverError::Invalid)?;
    if let Some(code) = &new.user_code {
        // No surrounding spaces: the request page trims what the person types. Six characters at
        // least: with five tries per client per 15 minutes, a six-digit code holds for years.
        if code.chars().count() < 6
            || code.chars().count() > 64
            || code.chars().any(char::is_control)
            || code.trim() != code
        {
            return Err(ApproverError::Invalid(
                "a user code must be 6 to 64 printable characters, without spaces at either end"
                    .into(),
            ));
        }
    }
    let id = random_id();
    let row = ApproverRow {
        user_code_hash: new
            .user_code
            .as_deref()
            .map(|code| user_code_digest(&id, code)),
        id,
        email,
        name: name.to_owned(),
        role: new.role.as_str().to_owned(),
        disabled: 0,
        created_at: now,
    };
    store.insert_approver(&row).await?;
    Ok(Approver::from_row(row))
}

pub async fn by_email(store: &Store, email: &str) -> Result<Option<Approver>, StoreError> {
    Ok(store
        .approver_by_email(&normalise_email(email))
        .await?
        .map(Approver::from_row))
}

pub async fn by_id(store: &Store, id: &str) -> Result<Option<Approver>, StoreError> {
    Ok(store.approver(id).await?.map(Approver::from_row))
}

/// Approvers recently looked up by email, so a burst of requests for one approver reads the store about
/// once a second. An entry is trusted for `CACHE_TTL`: a disabled approver stops getting requests within it.
#[derive(Default)]
pub struct ApproverCache {
    entries: RwLock<HashMap<String, (Millis, Approver)>>,
}

const CACHE_TTL: Millis = 1_000;

impl ApproverCache {
    pub async fn by_email(
        &self,
        store: &Store,
        email: &str,
        now: Millis,
    ) -> Result<Option<Approver>, StoreError> {
        let email = normalise_email(email);
        if let Some((at, approver)) = self
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&email)
        {
            if now - at < CACHE_TTL {
                return Ok(Some(approver.clone()));
            }
        }
        let found = store
            .approver_by_email(&email)
            .await?
            .map(Approver::from_row);
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        match &found {
            Some(approver) => entries.insert(email, (now, approver.clone())),
            None => entries.remove(&email),
        };
        Ok(found)
    }
}

/// Offboarding: the approver can no longer sign in (their sessions end at once), decide, or be asked;
/// their pending requests are answered `access_denied` and their approvals not yet redeemed earn
/// nothing (see `ciba::poll`). Returns how many requests were pending, or None if no such approver.
pub async fn disable(store: &Store, email: &str, now: Millis) -> Result<Option<i64>, StoreError> {
    store.disable_approver(&normalise_email(email), now).await
}

pub async fn list(store: &Store) -> Result<Vec<Approver>, StoreError> {
    Ok(store
        .approvers()
        .await?
        .into_iter()
        .map(Approver::from_row)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_loosely_but_surely() {
        assert!(valid_email("jane@example.com"));
        for bad in [
            "jane",
            "@example.com",
            "jane@example",
            "jane@.com",
            "ja ne@example.com",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
        assert_eq!(normalise_email(" Jane@Example.COM "), "jane@example.com");
    }
}
