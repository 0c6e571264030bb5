-- Groups of approvers, approval policies (quorum), and requests addressed to more than one person
-- (issue 23). A request is addressed to one approver (`approver_id`, as before) or to a group
-- (`group_id`); when a group or a policy decides who approves, the people who may decide are copied
-- into `request_addressees` when the request is made. `policy` is the rule in force (its id, version,
-- approvals needed and group), as the signed statement names it; `approvals` counts the approvals so
-- far, so two concurrent approvals cannot both be the last. A decision record is one per approver
-- and request: one person counts once, whichever passkey signed.
--
-- SQLite cannot drop NOT NULL or a UNIQUE column constraint in place, so `auth_requests`,
-- `decisions` and `notification_outbox` are rebuilt: copied, swapped, their triggers and indexes
-- made again (the search index keeps its rows). That is SQLite's documented procedure, which needs
-- foreign keys off: `Store::connect` runs the migrations with them off and checks every reference
-- afterwards.

CREATE TABLE approver_groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES approver_groups (id),
    approver_id TEXT NOT NULL REFERENCES approvers (id),
    added_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, approver_id)
) WITHOUT ROWID;
CREATE INDEX group_members_approver ON group_members (approver_id);

-- The groups an agent may address (set by an admin, never by the agent).
CREATE TABLE client_groups (
    client_id TEXT NOT NULL REFERENCES clients (id),
    group_id TEXT NOT NULL REFERENCES approver_groups (id),
    PRIMARY KEY (client_id, group_id)
) WITHOUT ROWID;

-- Every version of every policy, append-only: a change is a new version, retiring one is a new
-- version that is not active. A request names the version it was made under.
CREATE TABLE approval_policies (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    client_id TEXT REFERENCES clients (id),
    match_action TEXT,
    match_tool TEXT,
    amount_above TEXT,
    irreversible_only INTEGER NOT NULL DEFAULT 0,
    approvals INTEGER NOT NULL CHECK (approvals BETWEEN 1 AND 10),
    group_id TEXT REFERENCES approver_groups (id),
    active INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (id, version)
);
CREATE TRIGGER approval_policies_no_update BEFORE UPDATE ON approval_policies
BEGIN SELECT RAISE(ABORT, 'policy versions are append-only'); END;
CREATE TRIGGER approval_policies_no_delete BEFORE DELETE ON approval_policies
BEGIN SELECT RAISE(ABORT, 'policy versions are append-only'); END;

CREATE TABLE auth_requests_new (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    approver_id TEXT REFERENCES approvers (id),
    scope TEXT NOT NULL,
    binding_message TEXT,
    acr_values TEXT,
    authorization_details TEXT NOT NULL,
    notification_token TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    interval_secs INTEGER NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('pending', 'partly_approved', 'approved', 'denied', 'redeemed')),
    decided_at INTEGER,
    deny_reason TEXT,
    acr TEXT,
    amr TEXT,
    redeemed_at INTEGER,
    user_code_failures INTEGER NOT NULL DEFAULT 0,
    dpop_jkt TEXT,
    action_text TEXT NOT NULL DEFAULT '',
    target_text TEXT NOT NULL DEFAULT '',
    group_id TEXT REFERENCES approver_groups (id),
    policy TEXT,
    approvals INTEGER NOT NULL DEFAULT 0,
    CHECK (approver_id IS NOT NULL OR group_id IS NOT NULL)
) WITHOUT ROWID;

INSERT INTO auth_requests_new (id, client_id, approver_id, scope, binding_message, acr_values,
    authorization_details, notification_token, created_at, expires_at, interval_secs, status,
    decided_at, deny_reason, acr, amr, redeemed_at, user_code_failures, dpop_jkt, action_text,
    target_text)
SELECT id, client_id, approver_id, scope, binding_message, acr_values, authorization_details,
    notification_token, created_at, expires_at, interval_secs, status, decided_at, deny_reason, acr,
    amr, redeemed_at, user_code_failures, dpop_jkt, action_text, target_text
FROM auth_requests;

DROP TRIGGER request_search_insert;
DROP TRIGGER request_search_update;
DROP TRIGGER request_search_delete;
DROP TABLE auth_requests;
ALTER TABLE auth_requests_new RENAME TO auth_requests;

CREATE INDEX auth_requests_recent ON auth_requests (client_id, created_at);
CREATE INDEX auth_requests_approver ON auth_requests (approver_id, created_at);
CREATE INDEX auth_requests_pending ON auth_requests (approver_id, expires_at) WHERE status = 'pending';
CREATE INDEX auth_requests_history ON auth_requests (created_at, id);
CREATE TRIGGER request_search_insert AFTER INSERT ON auth_requests BEGIN
    INSERT INTO request_search (id, action_text, target_text)
        VALUES (new.id, new.action_text, new.target_text);
END;
CREATE TRIGGER request_search_update AFTER UPDATE OF id, action_text, target_text ON auth_requests BEGIN
    DELETE FROM request_search WHERE id = old.id;
    INSERT INTO request_search (id, action_text, target_text)
        VALUES (new.id, new.action_text, new.target_text);
END;
CREATE TRIGGER request_search_delete AFTER DELETE ON auth_requests BEGIN
    DELETE FROM request_search WHERE id = old.id;
END;

-- Who may decide a request addressed to a group or under a policy, fixed when it was made.
CREATE TABLE request_addressees (
    auth_req_id TEXT NOT NULL REFERENCES auth_requests (id),
    approver_id TEXT NOT NULL REFERENCES approvers (id),
    PRIMARY KEY (auth_req_id, approver_id)
) WITHOUT ROWID;
CREATE INDEX request_addressees_approver ON request_addressees (approver_id, auth_req_id);

CREATE TABLE decisions_new (
    seq INTEGER PRIMARY KEY,
    auth_req_id TEXT NOT NULL REFERENCES auth_requests (id),
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
    jws TEXT NOT NULL,
    credential_public_key TEXT,
    group_id TEXT,
    UNIQUE (auth_req_id, approver_id)
);
INSERT INTO decisions_new (seq, auth_req_id, request_digest, decision, reason, approver_id,
    credential_id, authenticator_data, client_data_json, signature, nonce, decided_at, prev_hash,
    record_hash, jws, credential_public_key)
SELECT seq, auth_req_id, request_digest, decision, reason, approver_id, credential_id,
    authenticator_data, client_data_json, signature, nonce, decided_at, prev_hash, record_hash, jws,
    credential_public_key
FROM decisions;
DROP TRIGGER decisions_no_update;
DROP TRIGGER decisions_no_delete;
DROP TABLE decisions;
ALTER TABLE decisions_new RENAME TO decisions;
CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;

-- A shared request is announced to each addressee, under `push:<approver>` and `email:<approver>`.
CREATE TABLE notification_outbox_new (
    auth_req_id TEXT NOT NULL REFERENCES auth_requests (id),
    channel TEXT NOT NULL CHECK (channel IN ('push', 'email', 'client')
        OR channel LIKE 'push:%' OR channel LIKE 'email:%'),
    claimed_until INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    done_at INTEGER,
    due_at INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (auth_req_id, channel)
);
INSERT INTO notification_outbox_new (auth_req_id, channel, claimed_until, attempts, done_at,
    due_at, last_error)
SELECT auth_req_id, channel, claimed_until, attempts, done_at, due_at, last_error
FROM notification_outbox;
DROP TABLE notification_outbox;
ALTER TABLE notification_outbox_new RENAME TO notification_outbox;
CREATE INDEX notification_outbox_client_due ON notification_outbox (due_at)
WHERE channel = 'client' AND done_at IS NULL;
