-- Recovering someone who lost every passkey (`admin::approvers`): one admin starts it, a second
-- approves it (each with their passkey, kept in the admin log), and only then do the old passkeys
-- end and a short-lived, single-use link (an invitation naming the recovery) enroll a new one.
-- `started_by`/`approved_by` NULL: the operator, with `countersign approver recover`.
CREATE TABLE recoveries (
    id TEXT PRIMARY KEY,
    approver_id TEXT NOT NULL REFERENCES approvers(id),
    started_by TEXT,
    started_at BIGINT NOT NULL,
    approved_by TEXT,
    approved_at BIGINT
);
CREATE INDEX recoveries_open ON recoveries (approver_id) WHERE approved_at IS NULL;
ALTER TABLE invitations ADD COLUMN recovery_id TEXT REFERENCES recoveries(id);
