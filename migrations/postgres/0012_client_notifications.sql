-- Client notifications (CIBA §10.2 ping, §10.3 push) join the outbox as channel 'client'. Unlike an
-- approver's announcement, a client notification is written in the same transaction as the decision
-- (or found by the expiry sweep), so it survives a crash between the two; `due_at` is when it may next
-- be tried (retries back off).
ALTER TABLE notification_outbox DROP CONSTRAINT notification_outbox_channel_check;
ALTER TABLE notification_outbox ADD CONSTRAINT notification_outbox_channel_check
    CHECK (channel IN ('push', 'email', 'client'));
ALTER TABLE notification_outbox ADD COLUMN due_at BIGINT NOT NULL DEFAULT 0;
-- Why the last try failed, for the operator.
ALTER TABLE notification_outbox ADD COLUMN last_error TEXT;

CREATE INDEX notification_outbox_client_due ON notification_outbox (due_at)
WHERE channel = 'client' AND done_at IS NULL;
