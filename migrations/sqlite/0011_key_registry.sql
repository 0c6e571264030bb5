-- The passkey key registry as a chain: every public key an approver registered, in order, each entry
-- hashed together with the previous entry's hash and signed by the server (`identity::registry`). A
-- passkey is accepted for sign-in and decisions only with a sealed entry here, so a row written into
-- `passkeys` by hand approves nothing. `passkey_keys` (0005) is its unsealed predecessor, read once
-- when this table is first filled.
CREATE TABLE key_registry (
    seq INTEGER PRIMARY KEY,
    credential_id TEXT NOT NULL UNIQUE,
    approver_id TEXT NOT NULL REFERENCES approvers (id),
    -- webauthn-rs's COSEKey, as JSON: the form decision records keep.
    public_key TEXT NOT NULL,
    registered_at INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL,
    jws TEXT NOT NULL
);

CREATE TRIGGER key_registry_no_update BEFORE UPDATE ON key_registry
BEGIN SELECT RAISE(ABORT, 'key_registry is append-only'); END;
CREATE TRIGGER key_registry_no_delete BEFORE DELETE ON key_registry
BEGIN SELECT RAISE(ABORT, 'key_registry is append-only'); END;
