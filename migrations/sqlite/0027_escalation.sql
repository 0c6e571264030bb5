-- Escalation (issue 23): a policy may name a group whose members are asked too when a request it
-- governs is still open after a while. The request keeps when that is due (`escalate_at`, from the
-- rule in its signed statement) and when it happened (`escalated_at`), so escalating is a
-- conditional update that happens once, by one instance.
ALTER TABLE approval_policies ADD COLUMN escalate_after_secs INTEGER;
ALTER TABLE approval_policies ADD COLUMN escalation_group_id TEXT REFERENCES approver_groups (id);
ALTER TABLE auth_requests ADD COLUMN escalate_at INTEGER;
ALTER TABLE auth_requests ADD COLUMN escalated_at INTEGER;
CREATE INDEX auth_requests_escalation ON auth_requests (escalate_at)
    WHERE escalate_at IS NOT NULL AND escalated_at IS NULL;
