//! The `checkpoint_log` table: which checkpoints each checkpoint directory was given (see
//! `ciba::checkpoint`), so a directory put back from an older copy is seen.
use super::{Store, StoreResult};

impl Store {
    /// Records checkpoint `seq` (the SHA-256 of its JWS, hex) as written to directory `directory_id`.
    pub async fn record_checkpoint(
        &self,
        directory_id: &str,
        seq: i64,
        hash: &str,
        made_at: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO checkpoint_log (directory_id, seq, hash, made_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(directory_id)
        .bind(seq)
        .bind(hash)
        .bind(made_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The last checkpoint recorded for directory `directory_id`: its sequence number and hash.
    pub async fn last_checkpoint(&self, directory_id: &str) -> StoreResult<Option<(i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT seq, hash FROM checkpoint_log WHERE directory_id = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(directory_id)
        .fetch_optional(self.pool())
        .await?)
    }
}
