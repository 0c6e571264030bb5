//! The `approver_groups`, `group_members` and `client_groups` tables, and the versions of
//! `approval_policies`. Changes to them change who can approve, so they are made through the admin
//! log's transaction (`admin_log::ApproverUpdate`); this module reads them and holds the writes
//! that transaction runs.
use sqlx::{AnyConnection, FromRow};

use super::{Store, StoreError, StoreResult};

#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct GroupRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

/// One member, with what the console shows of them.
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct MemberRow {
    pub group_id: String,
    pub approver_id: String,
    pub name: String,
    pub email: String,
    pub disabled: i64,
}

#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct PolicyRow {
    pub id: String,
    pub version: i64,
    pub name: String,
    pub client_id: Option<String>,
    pub match_action: Option<String>,
    pub match_tool: Option<String>,
    pub amount_above: Option<String>,
    pub irreversible_only: i64,
    pub approvals: i64,
    pub group_id: Option<String>,
    pub active: i64,
    pub created_by: String,
    pub created_at: i64,
    /// Ask `escalation_group_id`'s members too when a request is still open this long after it was
    /// made.
    pub escalate_after_secs: Option<i64>,
    pub escalation_group_id: Option<String>,
}

const POLICY_COLUMNS: &str =
    "id, version, name, client_id, match_action, match_tool, amount_above, \
    irreversible_only, approvals, group_id, active, created_by, created_at, escalate_after_secs, \
    escalation_group_id";

impl Store {
    pub async fn groups(&self) -> StoreResult<Vec<GroupRow>> {
        Ok(
            sqlx::query_as("SELECT id, name, created_at FROM approver_groups ORDER BY name")
                .fetch_all(self.pool())
                .await?,
        )
    }

    pub async fn group_by_name(&self, name: &str) -> StoreResult<Option<GroupRow>> {
        Ok(
            sqlx::query_as("SELECT id, name, created_at FROM approver_groups WHERE name = $1")
                .bind(name)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    pub async fn group(&self, id: &str) -> StoreResult<Option<GroupRow>> {
        Ok(
            sqlx::query_as("SELECT id, name, created_at FROM approver_groups WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// Every membership, by group then name.
    pub async fn group_members(&self) -> StoreResult<Vec<MemberRow>> {
        Ok(sqlx::query_as(
            "SELECT m.group_id, m.approver_id, a.name, a.email, a.disabled FROM group_members m \
             JOIN approvers a ON a.id = m.approver_id ORDER BY m.group_id, a.name, a.email",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// The enabled members of a group, by id: who a request to it is addressed to.
    pub async fn enabled_members(&self, group_id: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT m.approver_id FROM group_members m JOIN approvers a ON a.id = m.approver_id \
             WHERE m.group_id = $1 AND a.disabled = 0 ORDER BY m.approver_id",
        )
        .bind(group_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Whether `client_id` was allowed to address `group_id`.
    pub async fn client_may_address(&self, client_id: &str, group_id: &str) -> StoreResult<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM client_groups WHERE client_id = $1 AND group_id = $2",
        )
        .bind(client_id)
        .bind(group_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(found.is_some())
    }

    /// Every (agent, group) an agent may address.
    pub async fn client_groups(&self) -> StoreResult<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT client_id, group_id FROM client_groups ORDER BY client_id, group_id",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// The newest version of every policy (retired ones included: their newest version says so).
    pub async fn newest_policies(&self) -> StoreResult<Vec<PolicyRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {POLICY_COLUMNS} FROM approval_policies p WHERE version = \
             (SELECT MAX(version) FROM approval_policies WHERE id = p.id) ORDER BY name, id"
        ))
        .fetch_all(self.pool())
        .await?)
    }

    /// One version of a policy.
    pub async fn policy_version(&self, id: &str, version: i64) -> StoreResult<Option<PolicyRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {POLICY_COLUMNS} FROM approval_policies WHERE id = $1 AND version = $2"
        ))
        .bind(id)
        .bind(version)
        .fetch_optional(self.pool())
        .await?)
    }
}

/// Writes run inside the admin log's transaction.
pub(super) async fn create_group(conn: &mut AnyConnection, row: &GroupRow) -> StoreResult<bool> {
    sqlx::query("INSERT INTO approver_groups (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(&row.id)
        .bind(&row.name)
        .bind(row.created_at)
        .execute(conn)
        .await
        .map_err(|e| StoreError::on_unique(e, "group name"))?;
    Ok(true)
}

pub(super) async fn add_member(
    conn: &mut AnyConnection,
    group_id: &str,
    approver_id: &str,
    at: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO group_members (group_id, approver_id, added_at) VALUES ($1, $2, $3) \
         ON CONFLICT (group_id, approver_id) DO NOTHING",
    )
    .bind(group_id)
    .bind(approver_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn remove_member(
    conn: &mut AnyConnection,
    group_id: &str,
    approver_id: &str,
) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND approver_id = $2")
        .bind(group_id)
        .bind(approver_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn allow_group(
    conn: &mut AnyConnection,
    client_id: &str,
    group_id: &str,
    allowed: bool,
) -> StoreResult<bool> {
    let done = if allowed {
        sqlx::query(
            "INSERT INTO client_groups (client_id, group_id) VALUES ($1, $2) \
             ON CONFLICT (client_id, group_id) DO NOTHING",
        )
        .bind(client_id)
        .bind(group_id)
        .execute(conn)
        .await?
    } else {
        sqlx::query("DELETE FROM client_groups WHERE client_id = $1 AND group_id = $2")
            .bind(client_id)
            .bind(group_id)
            .execute(conn)
            .await?
    };
    Ok(done.rows_affected() == 1)
}

/// Appends a policy version; false when that version exists (a concurrent change came first).
pub(super) async fn add_policy_version(
    conn: &mut AnyConnection,
    row: &PolicyRow,
) -> StoreResult<bool> {
    let done = sqlx::query(&format!(
        "INSERT INTO approval_policies ({POLICY_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (id, version) DO NOTHING"
    ))
    .bind(&row.id)
    .bind(row.version)
    .bind(&row.name)
    .bind(&row.client_id)
    .bind(&row.match_action)
    .bind(&row.match_tool)
    .bind(&row.amount_above)
    .bind(row.irreversible_only)
    .bind(row.approvals)
    .bind(&row.group_id)
    .bind(row.active)
    .bind(&row.created_by)
    .bind(row.created_at)
    .bind(row.escalate_after_secs)
    .bind(&row.escalation_group_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
