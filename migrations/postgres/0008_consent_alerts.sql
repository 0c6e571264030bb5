-- Requests whose approval failed verification when the agent came for its tokens: a status with no
-- decision record behind it, a record that does not verify, a request changed after its decision. No
-- tokens were issued for them; the row says why, once per request, for the admins and the audit.
CREATE TABLE consent_alerts (
    auth_req_id TEXT PRIMARY KEY REFERENCES auth_requests (id),
    problem TEXT NOT NULL,
    found_at BIGINT NOT NULL
);
