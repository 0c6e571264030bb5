-- Passkeys, invitations and browser sessions of approvers and admins.

-- Bumped by "sign out everywhere": sessions carry the epoch they were made in.
ALTER TABLE approvers ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;

CREATE TABLE passkeys (
    credential_id TEXT PRIMARY KEY,
    approver_id TEXT NOT NULL REFERENCES approvers (id),
    name TEXT NOT NULL,
    -- webauthn-rs's Passkey (public key, counter, backup flags), as JSON.
    passkey TEXT NOT NULL,
    backup_state BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    -- Set when the signature counter went backwards (a possible clone); the passkey then cannot sign in.
    suspended_at BIGINT,
    suspended_reason TEXT
);

CREATE INDEX passkeys_approver ON passkeys (approver_id);

CREATE TABLE invitations (
    token_hash TEXT PRIMARY KEY,
    email TEXT,
    name TEXT,
    role TEXT NOT NULL CHECK (role IN ('approver', 'admin')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    approver_id TEXT REFERENCES approvers (id)
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX sessions_expiry ON sessions (expires_at);
