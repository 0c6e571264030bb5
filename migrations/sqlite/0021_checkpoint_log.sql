-- The checkpoints each checkpoint directory was given (`ciba::checkpoint`): its id (kept in the
-- directory), the checkpoint's sequence number and the SHA-256 of its JWS. A directory whose latest
-- checkpoint is older than what was recorded here was put back; only a writer of both the directory
-- and the database could hide that. Append-only.
CREATE TABLE checkpoint_log (
    directory_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    made_at INTEGER NOT NULL,
    PRIMARY KEY (directory_id, seq)
);
CREATE TRIGGER checkpoint_log_no_update BEFORE UPDATE ON checkpoint_log
BEGIN SELECT RAISE(ABORT, 'checkpoint_log is append-only'); END;
CREATE TRIGGER checkpoint_log_no_delete BEFORE DELETE ON checkpoint_log
BEGIN SELECT RAISE(ABORT, 'checkpoint_log is append-only'); END;
