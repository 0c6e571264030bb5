-- Delegation (issue 23): an approver who is away hands their requests to a colleague for a period.
-- Set by an admin (confirmed with the admin's passkey and kept in the admin log) or the operator;
-- ended early by setting `ended_at`. A request made while one runs is addressed to the delegate
-- "on behalf of" the approver (`request_addressees.on_behalf_of`), and the decision record says so.
-- `shared` marks a request whose deciders are its `request_addressees` rows rather than its
-- `approver_id` alone: one addressed to a group, held to a policy, or handed to a delegate.
CREATE TABLE delegations (
    id TEXT PRIMARY KEY,
    approver_id TEXT NOT NULL REFERENCES approvers (id),
    delegate_id TEXT NOT NULL REFERENCES approvers (id),
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    set_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    ended_at BIGINT,
    CHECK (approver_id <> delegate_id),
    CHECK (ends_at > starts_at)
);
CREATE INDEX delegations_approver ON delegations (approver_id, ends_at);

ALTER TABLE request_addressees ADD COLUMN on_behalf_of TEXT REFERENCES approvers (id);
ALTER TABLE decisions ADD COLUMN on_behalf_of TEXT;
ALTER TABLE auth_requests ADD COLUMN shared BIGINT NOT NULL DEFAULT 0;
UPDATE auth_requests SET shared = 1 WHERE group_id IS NOT NULL OR policy IS NOT NULL;
