-- Client notifications (CIBA §10.2 ping, §10.3 push) join the outbox as channel 'client'. Unlike an
-- approver's announcement, a client notification is written in the same transaction as the decision
-- (or found by the expiry sweep), so it survives a crash between the two; `due_at` is when it may next
-- be tried (retries back off). SQLite cannot alter a CHECK constraint, so the table is rebuilt.
CREATE TABLE notification_outbox_new (
    auth_req_id TEXT NOT NULL REFERENCES auth_requests (id),
    channel TEXT NOT NULL CHECK (channel IN ('push', 'email', 'client')),
    claimed_until INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    done_at INTEGER,
    due_at INTEGER NOT NULL DEFAULT 0,
    -- Why the last try failed, for the operator.
    last_error TEXT,
    PRIMARY KEY (auth_req_id, channel)
);
INSERT INTO notification_outbox_new (auth_req_id, channel, claimed_until, attempts, done_at)
SELECT auth_req_id, channel, claimed_until, attempts, done_at FROM notification_outbox;
DROP TABLE notification_outbox;
ALTER TABLE notification_outbox_new RENAME TO notification_outbox;

CREATE INDEX notification_outbox_client_due ON notification_outbox (due_at)
WHERE channel = 'client' AND done_at IS NULL;
