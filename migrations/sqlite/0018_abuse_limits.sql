-- Once-only client JWTs (client assertions, signed requests) already used, by a digest of client and
-- `jti`, until they expire. In the database, so a JWT used at one instance is refused at every other;
-- small, since such JWTs live at most 10 minutes (`ciba::clients::jwt`) and the sweep deletes
-- expired rows.
CREATE TABLE used_jtis (
    key TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX used_jtis_expiry ON used_jtis (expires_at);

-- Wrong user codes (CIBA §7.1) per client and approver: after five within 15 minutes, that client's
-- codes for that approver are refused, right or wrong, until 15 minutes after the last wrong one.
CREATE TABLE user_code_failures (
    client_id TEXT NOT NULL,
    approver_id TEXT NOT NULL,
    failures BIGINT NOT NULL,
    last_failed_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, approver_id)
);
