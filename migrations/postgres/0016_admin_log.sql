-- What admins did in the console (registering agents, rotating secrets, disabling): who, what, when.
-- Append-only, like the decision records: the database refuses updates, deletes and TRUNCATE.
CREATE TABLE admin_log (
    seq BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    admin_id TEXT NOT NULL,
    admin_email TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT
);
CREATE FUNCTION admin_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the admin log is append-only';
END;
$$;
CREATE TRIGGER admin_log_no_change BEFORE UPDATE OR DELETE ON admin_log
FOR EACH ROW EXECUTE FUNCTION admin_log_append_only();
CREATE TRIGGER admin_log_no_truncate BEFORE TRUNCATE ON admin_log
FOR EACH STATEMENT EXECUTE FUNCTION admin_log_append_only();
