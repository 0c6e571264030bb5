-- The checkpoints each checkpoint directory was given (`ciba::checkpoint`): its id (kept in the
-- directory), the checkpoint's sequence number and the SHA-256 of its JWS. A directory whose latest
-- checkpoint is older than what was recorded here was put back; only a writer of both the directory
-- and the database could hide that. Append-only.
CREATE TABLE checkpoint_log (
    directory_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    made_at BIGINT NOT NULL,
    PRIMARY KEY (directory_id, seq)
);
CREATE FUNCTION checkpoint_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'checkpoint_log is append-only';
END;
$$;
CREATE TRIGGER checkpoint_log_no_change BEFORE UPDATE OR DELETE ON checkpoint_log
FOR EACH ROW EXECUTE FUNCTION checkpoint_log_append_only();
CREATE TRIGGER checkpoint_log_no_truncate BEFORE TRUNCATE ON checkpoint_log
FOR EACH STATEMENT EXECUTE FUNCTION checkpoint_log_append_only();
