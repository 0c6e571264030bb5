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
