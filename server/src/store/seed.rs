//! Synthetic history for development and benchmarks (`countersign dev seed`): requests written in
//! bulk, already decided. They have no decision records (nothing was decided by anyone), so
//! `audit verify` reports every one of them: a seeded database is never evidence.
use super::{Backend, Store, StoreResult};

/// One synthetic request as stored.
#[derive(Clone, Debug)]
pub struct SeedRow {
    pub id: String,
    pub client_id: String,
    pub approver_id: String,
    pub authorization_details: String,
    pub action_text: String,
    pub target_text: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// pending, approved, denied or redeemed.
    pub status: &'static str,
    pub decided_at: Option<i64>,
    pub deny_reason: Option<String>,
    pub redeemed_at: Option<i64>,
}

/// Parameters per row of the bulk insert.
const PARAMS: usize = 12;
/// Rows per INSERT: 12,000 parameters, within both databases' limits.
pub const SEED_ROWS_PER_INSERT: usize = 1_000;

impl Store {
    /// Writes `rows` (at most [`SEED_ROWS_PER_INSERT`]) in one statement.
    pub async fn insert_seed_rows(&self, rows: &[SeedRow]) -> StoreResult<()> {
        assert!(rows.len() <= SEED_ROWS_PER_INSERT);
        let mut sql = String::from(
            "INSERT INTO auth_requests (id, client_id, approver_id, scope, authorization_details, \
             action_text, target_text, created_at, expires_at, interval_secs, status, decided_at, \
             deny_reason, redeemed_at) VALUES ",
        );
        for i in 0..rows.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            let p: Vec<String> = match self.backend() {
                Backend::Sqlite => vec!["?".to_owned(); PARAMS],
                Backend::Postgres => (1..=PARAMS)
                    .map(|k| format!("${}", i * PARAMS + k))
                    .collect(),
            };
            let (id, rest) = p.split_at(3);
            sql.push_str(&format!(
                "({}, 'openid', {}, 5, {})",
                id.join(", "),
                rest[..5].join(", "),
                rest[5..].join(", ")
            ));
        }
        let mut query = sqlx::query(&sql);
        for row in rows {
            query = query
                .bind(&row.id)
                .bind(&row.client_id)
                .bind(&row.approver_id)
                .bind(&row.authorization_details)
                .bind(&row.action_text)
                .bind(&row.target_text)
                .bind(row.created_at)
                .bind(row.expires_at)
                .bind(row.status)
                .bind(row.decided_at)
                .bind(&row.deny_reason)
                .bind(row.redeemed_at);
        }
        query.execute(self.pool()).await?;
        Ok(())
    }

    /// How many requests the database holds.
    pub async fn request_count(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM auth_requests")
            .fetch_one(self.pool())
            .await?)
    }
}
