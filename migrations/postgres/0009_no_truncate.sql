-- TRUNCATE removes rows without firing row-level triggers: the append-only evidence tables refuse it
-- too. (SQLite has no TRUNCATE; its DELETE fires the row triggers of 0003 and 0005.)
CREATE TRIGGER decisions_no_truncate BEFORE TRUNCATE ON decisions
FOR EACH STATEMENT EXECUTE FUNCTION decisions_append_only();
CREATE TRIGGER passkey_keys_no_truncate BEFORE TRUNCATE ON passkey_keys
FOR EACH STATEMENT EXECUTE FUNCTION passkey_keys_append_only();
