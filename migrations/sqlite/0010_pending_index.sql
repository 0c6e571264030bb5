-- Only pending requests are counted against the pending limit, warmed into the poll cache at start
-- and announced: a partial index holds just those, so these reads stay small however long the
-- history grows. A decided request leaves the index.
CREATE INDEX auth_requests_pending ON auth_requests (client_id, approver_id, expires_at) WHERE status = 'pending';
