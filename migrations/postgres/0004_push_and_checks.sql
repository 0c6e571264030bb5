-- Web Push (RFC 8030/8291/8292): the deployment's VAPID key and the browsers that opted in; the
-- request page's user_code check; the passkey public key in each decision record for offline audits.

-- One row, made at first start ('current'); the private key is the raw P-256 scalar, base64url.
CREATE TABLE vapid_keys (
    id TEXT PRIMARY KEY,
    private_key TEXT NOT NULL,
    -- The uncompressed public point, base64url: the browsers' applicationServerKey.
    public_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE push_subscriptions (
    id TEXT PRIMARY KEY,
    approver_id TEXT NOT NULL REFERENCES approvers (id),
    -- The push service URL that identifies one browser's subscription (a capability: never logged).
    endpoint TEXT NOT NULL UNIQUE,
    -- The browser's ECDH public key and auth secret (RFC 8291), base64url.
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_sent_at BIGINT,
    failures BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX push_subscriptions_approver ON push_subscriptions (approver_id);

-- Wrong user_code entries on the request page; past the limit the request can only be denied.
ALTER TABLE auth_requests ADD COLUMN user_code_failures BIGINT NOT NULL DEFAULT 0;

-- The COSE public key (webauthn-rs JSON) the assertion was checked with, so `audit verify` can check
-- the signature without the live passkeys table. NULL in records written before this column existed.
ALTER TABLE decisions ADD COLUMN credential_public_key TEXT;
