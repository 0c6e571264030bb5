//! The `admin_log` table: what admins did in the console, append-only (migration 0016) and a hash
//! chain (0022; the hashing is `admin::log`'s). A change to who can approve is written in the same
//! transaction as its entry (`admin_change`): there is no change without its entry, nor the reverse.
use sqlx::{AnyConnection, FromRow};

use super::{
    delegations::DelegationRow,
    groups::{GroupRow, PolicyRow},
    invitations::InvitationRow,
    recoveries::RecoveryRow,
    Store, StoreError, StoreResult,
};
use crate::clock::Millis;

/// Serialises appends on PostgreSQL, so two entries never name the same predecessor.
const ADMIN_CHAIN_LOCK: i64 = 7_242_003;

const COLUMNS: &str =
    "seq, at, admin_id, admin_email, action, subject, detail, authorisation, prev_hash, entry_hash";

#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct AdminLogRow {
    pub seq: i64,
    pub at: i64,
    pub admin_id: String,
    pub admin_email: String,
    pub action: String,
    pub subject: String,
    pub detail: Option<String>,
    /// The admin's passkey assertion over the change (JSON), for changes to who can approve.
    pub authorisation: Option<String>,
    /// None for entries written before the log was a chain.
    pub prev_hash: Option<String>,
    pub entry_hash: Option<String>,
}

/// One entry to append.
pub struct AdminEntry<'a> {
    pub at: Millis,
    pub admin_id: &'a str,
    pub admin_email: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub detail: Option<&'a str>,
    pub authorisation: Option<&'a str>,
}

/// A change to who can approve, made together with its admin log entry.
pub enum ApproverUpdate<'a> {
    Invite(&'a InvitationRow),
    SetRole {
        approver_id: &'a str,
        role: &'a str,
    },
    /// Disables the approver and ends their sessions.
    Disable {
        approver_id: &'a str,
    },
    RevokePasskey {
        approver_id: &'a str,
        credential_id: &'a str,
    },
    StartRecovery(&'a RecoveryRow),
    /// The operator's recovery (`approver recover`): started and approved at once.
    OperatorRecovery {
        recovery: &'a RecoveryRow,
        link: &'a InvitationRow,
    },
    /// Approves a recovery (once), ends the approver's passkeys and sessions, writes its link.
    ApproveRecovery {
        recovery: &'a RecoveryRow,
        approved_by: &'a str,
        at: i64,
        link: &'a InvitationRow,
    },
    CreateGroup(&'a GroupRow),
    AddMember {
        group_id: &'a str,
        approver_id: &'a str,
        at: i64,
    },
    RemoveMember {
        group_id: &'a str,
        approver_id: &'a str,
    },
    /// Lets an agent address a group (`allowed`), or stops it.
    AllowGroup {
        client_id: &'a str,
        group_id: &'a str,
        allowed: bool,
    },
    /// A new version of a policy (a retired one is a version that is not active).
    PolicyVersion(&'a PolicyRow),
    Delegate(&'a DelegationRow),
    EndDelegation {
        id: &'a str,
        at: i64,
    },
    /// Cancels a recovery not yet approved.
    CancelRecovery {
        recovery: &'a RecoveryRow,
        cancelled_by: &'a str,
        at: i64,
    },
}

/// The hash of an entry given the hash before it (`admin::log::entry_hash`).
pub type EntryHasher = fn(&AdminEntry<'_>, &str) -> String;

impl Store {
    /// Appends an entry with no change beside it (agents registered, settings changed).
    pub async fn append_admin_log(
        &self,
        entry: &AdminEntry<'_>,
        hash: EntryHasher,
    ) -> StoreResult<()> {
        let mut tx = self.begin_chained(ADMIN_CHAIN_LOCK).await?;
        append(&mut tx, entry, hash).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Makes `change` and appends its entry in one transaction. False, with nothing written, when
    /// the change found nothing to change (no such approver or passkey).
    pub async fn admin_change(
        &self,
        change: ApproverUpdate<'_>,
        entry: &AdminEntry<'_>,
        hash: EntryHasher,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_chained(ADMIN_CHAIN_LOCK).await?;
        if !apply(&mut tx, change).await? {
            return Ok(false);
        }
        append(&mut tx, entry, hash).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The newest `limit` entries, newest first.
    pub async fn admin_log(&self, limit: i64) -> StoreResult<Vec<AdminLogRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM admin_log ORDER BY seq DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// The whole log, oldest first (for `audit verify`).
    pub async fn admin_log_chain(&self) -> StoreResult<Vec<AdminLogRow>> {
        Ok(
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM admin_log ORDER BY seq"))
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// The last chained entry: (seq, hash).
    pub async fn admin_log_head(&self) -> StoreResult<Option<(i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT seq, entry_hash FROM admin_log WHERE entry_hash IS NOT NULL ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?)
    }

    /// The hash of entry `seq`, if there is one.
    pub async fn admin_log_hash_at(&self, seq: i64) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT entry_hash FROM admin_log WHERE seq = $1")
                .bind(seq)
                .fetch_optional(self.pool())
                .await?
                .flatten(),
        )
    }
}

async fn apply(conn: &mut AnyConnection, change: ApproverUpdate<'_>) -> StoreResult<bool> {
    let done = match change {
        ApproverUpdate::Invite(row) => {
            super::invitations::insert(conn, row).await?;
            return Ok(true);
        }
        ApproverUpdate::SetRole { approver_id, role } => {
            sqlx::query("UPDATE approvers SET role = $1 WHERE id = $2")
                .bind(role)
                .bind(approver_id)
                .execute(&mut *conn)
                .await?
        }
        ApproverUpdate::Disable { approver_id } => sqlx::query(
            "UPDATE approvers SET disabled = 1, session_epoch = session_epoch + 1 WHERE id = $1",
        )
        .bind(approver_id)
        .execute(&mut *conn)
        .await?,
        ApproverUpdate::RevokePasskey {
            approver_id,
            credential_id,
        } => {
            // Even their last: its key stays in the key registry, so what it signed still verifies.
            sqlx::query("DELETE FROM passkeys WHERE credential_id = $1 AND approver_id = $2")
                .bind(credential_id)
                .bind(approver_id)
                .execute(&mut *conn)
                .await?
        }
        ApproverUpdate::StartRecovery(row) => {
            super::recoveries::start(conn, row).await?;
            return Ok(true);
        }
        ApproverUpdate::OperatorRecovery { recovery, link } => {
            super::recoveries::start(conn, recovery).await?;
            let at = recovery.started_at;
            return super::recoveries::approve(
                conn,
                &recovery.id,
                &recovery.approver_id,
                None,
                at,
                link,
            )
            .await;
        }
        ApproverUpdate::ApproveRecovery {
            recovery,
            approved_by,
            at,
            link,
        } => {
            return super::recoveries::approve(
                conn,
                &recovery.id,
                &recovery.approver_id,
                Some(approved_by),
                at,
                link,
            )
            .await
        }
        ApproverUpdate::CancelRecovery {
            recovery,
            cancelled_by,
            at,
        } => return super::recoveries::cancel(conn, &recovery.id, cancelled_by, at).await,
        ApproverUpdate::CreateGroup(row) => return super::groups::create_group(conn, row).await,
        ApproverUpdate::AddMember {
            group_id,
            approver_id,
            at,
        } => return super::groups::add_member(conn, group_id, approver_id, at).await,
        ApproverUpdate::RemoveMember {
            group_id,
            approver_id,
        } => return super::groups::remove_member(conn, group_id, approver_id).await,
        ApproverUpdate::AllowGroup {
            client_id,
            group_id,
            allowed,
        } => return super::groups::allow_group(conn, client_id, group_id, allowed).await,
        ApproverUpdate::PolicyVersion(row) => {
            return super::groups::add_policy_version(conn, row).await
        }
        ApproverUpdate::Delegate(row) => return super::delegations::insert(conn, row).await,
        ApproverUpdate::EndDelegation { id, at } => {
            return super::delegations::end(conn, id, at).await
        }
    };
    Ok(done.rows_affected() == 1)
}

async fn append(
    conn: &mut AnyConnection,
    entry: &AdminEntry<'_>,
    hash: EntryHasher,
) -> StoreResult<()> {
    let prev: Option<String> = sqlx::query_scalar(
        "SELECT entry_hash FROM admin_log WHERE entry_hash IS NOT NULL ORDER BY seq DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let prev = prev.unwrap_or_else(|| super::decisions::GENESIS_HASH.to_owned());
    let entry_hash = hash(entry, &prev);
    sqlx::query(
        "INSERT INTO admin_log (at, admin_id, admin_email, action, subject, detail, authorisation, prev_hash, entry_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(entry.at)
    .bind(entry.admin_id)
    .bind(entry.admin_email)
    .bind(entry.action)
    .bind(entry.subject)
    .bind(entry.detail)
    .bind(entry.authorisation)
    .bind(&prev)
    .bind(&entry_hash)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::from)?;
    Ok(())
}
