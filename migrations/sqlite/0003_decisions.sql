-- The decision record: one row per decision, append-only, hash-chained and signed by the server.
CREATE TABLE decisions (
    seq INTEGER PRIMARY KEY,
    auth_req_id TEXT NOT NULL UNIQUE REFERENCES auth_requests (id),
    request_digest TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('approve', 'deny')),
    reason TEXT,
    approver_id TEXT NOT NULL REFERENCES approvers (id),
    credential_id TEXT NOT NULL,
    authenticator_data TEXT NOT NULL,
    client_data_json TEXT NOT NULL,
    signature TEXT NOT NULL,
    nonce TEXT NOT NULL,
    decided_at INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    record_hash TEXT NOT NULL,
    jws TEXT NOT NULL
);

-- Append-only: the database itself refuses edits and deletions of decision rows.
CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
