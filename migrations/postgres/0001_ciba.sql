-- Agent clients, approvers, signing keys and backchannel authentication requests.
-- Times are Unix milliseconds; booleans are 0/1 integers so both databases read them alike.

CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    delivery_mode TEXT NOT NULL CHECK (delivery_mode IN ('poll', 'ping', 'push')),
    notify_url TEXT,
    scopes TEXT NOT NULL,
    auth_method TEXT NOT NULL
        CHECK (auth_method IN ('client_secret_basic', 'client_secret_post', 'private_key_jwt')),
    secret_hash TEXT,
    jwks TEXT,
    disabled BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE approvers (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('approver', 'admin')),
    user_code_hash TEXT,
    disabled BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_jwk TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

CREATE TABLE auth_requests (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    approver_id TEXT NOT NULL REFERENCES approvers (id),
    scope TEXT NOT NULL,
    binding_message TEXT,
    acr_values TEXT,
    authorization_details TEXT NOT NULL,
    notification_token TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    interval_secs BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'redeemed')),
    decided_at BIGINT,
    deny_reason TEXT,
    acr TEXT,
    amr TEXT,
    redeemed_at BIGINT
);

CREATE INDEX auth_requests_pending ON auth_requests (approver_id, client_id, status);
CREATE INDEX auth_requests_recent ON auth_requests (client_id, created_at);

-- Access tokens issued at redemption, so a replayed auth_req_id can revoke them (RFC 6749 §10.5).
CREATE TABLE issued_tokens (
    jti TEXT PRIMARY KEY,
    auth_req_id TEXT NOT NULL REFERENCES auth_requests (id),
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE INDEX issued_tokens_request ON issued_tokens (auth_req_id);
