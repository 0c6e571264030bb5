-- The notification outbox: which requests each channel (Web Push, e-mail) has announced. A delivery is
-- claimed (a row with a lease) before it is sent and marked done after, so that neither a crash, nor an
-- event lost between instances, nor two instances at once lose or repeat it: a periodic sweep claims
-- what nobody claimed, or whose lease ran out, and sends it.
CREATE TABLE notification_outbox (
    auth_req_id TEXT NOT NULL REFERENCES auth_requests (id),
    channel TEXT NOT NULL CHECK (channel IN ('push', 'email')),
    claimed_until INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    done_at INTEGER,
    PRIMARY KEY (auth_req_id, channel)
);

-- Requests already pending were announced by the code before the outbox: recorded as done, so the
-- first sweeps do not announce them again.
INSERT INTO notification_outbox (auth_req_id, channel, claimed_until, attempts, done_at)
SELECT id, 'push', 0, 1, created_at FROM auth_requests WHERE status = 'pending';
INSERT INTO notification_outbox (auth_req_id, channel, claimed_until, attempts, done_at)
SELECT id, 'email', 0, 1, created_at FROM auth_requests WHERE status = 'pending';
