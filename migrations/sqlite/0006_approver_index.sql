-- An approver's requests by time: the inbox (newest first), its live fingerprint and request page
-- references all look requests up this way. It replaces an index whose only column any query used was
-- its first (the limit checks go by client), so inserts maintain no more indexes than before.
DROP INDEX auth_requests_pending;
CREATE INDEX auth_requests_approver ON auth_requests (approver_id, created_at);
