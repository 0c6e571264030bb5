//! Changes to who can approve (inviting, promoting, demoting, disabling, revoking a passkey,
//! starting, approving or cancelling a recovery) are
//! confirmed by the admin with a fresh, user-verified passkey assertion over that very change, as
//! decisions are: a stolen admin session alone changes nothing. The challenge commits to the admin
//! and the change (`change_challenge`), and the assertion is kept in the change's admin log entry,
//! so anyone can check later, offline, that the admin's own passkey asked for exactly that.
use serde::{Deserialize, Serialize};

use crate::{identity::provenance::Authorisation, secrets::sha256};

/// Domain separation: this challenge is never a decision's or an addition's.
const TAG: &[u8] = b"countersign/admin-change/v1\0";

/// A change to who can approve, as the admin asked for it. Approvers and passkeys by id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case", deny_unknown_fields)]
pub enum Change {
    Invite {
        email: String,
        name: Option<String>,
        admin: bool,
    },
    Promote {
        approver: String,
    },
    Demote {
        approver: String,
    },
    Disable {
        approver: String,
    },
    RevokePasskey {
        approver: String,
        credential: String,
    },
    /// One admin starts recovering someone who lost every passkey…
    StartRecovery {
        approver: String,
    },
    /// …and a second approves it: the old passkeys end and a link enrolls a new one.
    ApproveRecovery {
        recovery: String,
    },
    /// Any admin may cancel it before then (a second admin declining it).
    CancelRecovery {
        recovery: String,
    },
    CreateGroup {
        name: String,
    },
    AddToGroup {
        group: String,
        approver: String,
    },
    RemoveFromGroup {
        group: String,
        approver: String,
    },
    /// Lets an agent address a group (`login_hint=group:<name>`).
    AllowGroup {
        agent: String,
        group: String,
    },
    DisallowGroup {
        agent: String,
        group: String,
    },
    /// A new policy (`policy` None) or a new version of one.
    SetPolicy {
        policy: Option<String>,
        name: String,
        agent: Option<String>,
        action: Option<String>,
        tool: Option<String>,
        amount_above: Option<String>,
        irreversible: bool,
        approvals: i64,
        group: Option<String>,
        /// Ask `escalation_group`'s members too after this many minutes open.
        escalate_after_mins: Option<i64>,
        escalation_group: Option<String>,
    },
    RetirePolicy {
        policy: String,
    },
    /// `approver`'s requests go to `delegate` from `starts_at` until `ends_at` (Unix ms).
    Delegate {
        approver: String,
        delegate: String,
        starts_at: i64,
        ends_at: i64,
    },
    EndDelegation {
        delegation: String,
    },
}

impl Change {
    /// A change to groups, policies or delegations (`admin::groups` plans them).
    pub fn is_about_groups(&self) -> bool {
        matches!(
            self,
            Change::CreateGroup { .. }
                | Change::AddToGroup { .. }
                | Change::RemoveFromGroup { .. }
                | Change::AllowGroup { .. }
                | Change::DisallowGroup { .. }
                | Change::SetPolicy { .. }
                | Change::RetirePolicy { .. }
                | Change::Delegate { .. }
                | Change::EndDelegation { .. }
        )
    }

    /// Its one JSON form, which the challenge hashes and the log entry keeps.
    pub fn canonical(&self) -> String {
        // A derived Serialize of a closed enum of strings, numbers and booleans: fields in declaration
        // order, nothing that can fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The challenge `admin_id`'s passkey signs to confirm `change`; `nonce` is fresh randomness.
/// Length-prefixed fields, so no two different confirmations share an input.
pub fn change_challenge(admin_id: &str, change: &Change, nonce: &[u8]) -> [u8; 32] {
    let mut input = TAG.to_vec();
    for field in [admin_id.as_bytes(), change.canonical().as_bytes()] {
        input.extend_from_slice(&(field.len() as u64).to_be_bytes());
        input.extend_from_slice(field);
    }
    input.extend_from_slice(nonce);
    sha256(&input)
}

/// The admin's confirmation, as the admin log entry keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    /// The passkey that signed.
    pub credential_id: String,
    pub change: Change,
    pub assertion: Authorisation,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_commits_to_the_admin_the_change_and_the_nonce() {
        let promote = Change::Promote {
            approver: "a".into(),
        };
        let base = change_challenge("admin", &promote, b"n");
        assert_eq!(base, change_challenge("admin", &promote, b"n"));
        assert_ne!(base, change_challenge("other", &promote, b"n"));
        assert_ne!(base, change_challenge("admin", &promote, b"m"));
        let demote = Change::Demote {
            approver: "a".into(),
        };
        assert_ne!(base, change_challenge("admin", &demote, b"n"));
        assert_eq!(
            promote.canonical(),
            r#"{"change":"promote","approver":"a"}"#
        );
    }
}
