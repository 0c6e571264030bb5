-- Only pending requests are counted against the pending limit, warmed into the poll cache at start,
-- announced, and timed by the live inbox (an approver's next expiry): a partial index holds just
-- those, so these reads stay small however long the history grows. A decided request leaves it.
CREATE INDEX auth_requests_pending ON auth_requests (approver_id, expires_at) WHERE status = 'pending';
