-- Groups of approvers, approval policies (quorum), and requests addressed to more than one person
-- (issue 23); see the SQLite migration of the same number for what each part is for.
CREATE TABLE approver_groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES approver_groups (id),
    approver_id TEXT NOT NULL REFERENCES approvers (id),
    added_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, approver_id)
);
CREATE INDEX group_members_approver ON group_members (approver_id);

CREATE TABLE client_groups (
    client_id TEXT NOT NULL REFERENCES clients (id),
    group_id TEXT NOT NULL REFERENCES approver_groups (id),
    PRIMARY KEY (client_id, group_id)
);

CREATE TABLE approval_policies (
    id TEXT NOT NULL,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    client_id TEXT REFERENCES clients (id),
    match_action TEXT,
    match_tool TEXT,
    amount_above TEXT,
    irreversible_only BIGINT NOT NULL DEFAULT 0,
    approvals BIGINT NOT NULL CHECK (approvals BETWEEN 1 AND 10),
    group_id TEXT REFERENCES approver_groups (id),
    active BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (id, version)
);
CREATE FUNCTION approval_policies_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'policy versions are append-only';
END;
$$;
CREATE TRIGGER approval_policies_no_change BEFORE UPDATE OR DELETE ON approval_policies
FOR EACH ROW EXECUTE FUNCTION approval_policies_append_only();
CREATE TRIGGER approval_policies_no_truncate BEFORE TRUNCATE ON approval_policies
FOR EACH STATEMENT EXECUTE FUNCTION approval_policies_append_only();

ALTER TABLE auth_requests ALTER COLUMN approver_id DROP NOT NULL;
ALTER TABLE auth_requests ADD COLUMN group_id TEXT REFERENCES approver_groups (id);
ALTER TABLE auth_requests ADD COLUMN policy TEXT;
ALTER TABLE auth_requests ADD COLUMN approvals BIGINT NOT NULL DEFAULT 0;
ALTER TABLE auth_requests DROP CONSTRAINT auth_requests_status_check;
ALTER TABLE auth_requests ADD CONSTRAINT auth_requests_status_check
    CHECK (status IN ('pending', 'partly_approved', 'approved', 'denied', 'redeemed'));
ALTER TABLE auth_requests ADD CONSTRAINT auth_requests_addressed
    CHECK (approver_id IS NOT NULL OR group_id IS NOT NULL);

CREATE TABLE request_addressees (
    auth_req_id TEXT NOT NULL REFERENCES auth_requests (id),
    approver_id TEXT NOT NULL REFERENCES approvers (id),
    PRIMARY KEY (auth_req_id, approver_id)
);
CREATE INDEX request_addressees_approver ON request_addressees (approver_id, auth_req_id);

ALTER TABLE decisions ADD COLUMN group_id TEXT;
ALTER TABLE decisions DROP CONSTRAINT decisions_auth_req_id_key;
ALTER TABLE decisions ADD CONSTRAINT decisions_one_per_approver UNIQUE (auth_req_id, approver_id);

-- A shared request is announced to each addressee, under `push:<approver>` and `email:<approver>`.
ALTER TABLE notification_outbox DROP CONSTRAINT notification_outbox_channel_check;
ALTER TABLE notification_outbox ADD CONSTRAINT notification_outbox_channel_check
    CHECK (channel IN ('push', 'email', 'client') OR channel LIKE 'push:%' OR channel LIKE 'email:%');
