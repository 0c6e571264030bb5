-- Every passkey public key ever registered, kept after the passkey itself is removed, so that
-- `audit verify` can confirm the key a decision record names: append-only, like the decisions.
CREATE TABLE passkey_keys (
    credential_id TEXT PRIMARY KEY,
    approver_id TEXT NOT NULL REFERENCES approvers (id),
    -- webauthn-rs's COSEKey, as JSON: the form decision records keep.
    public_key TEXT NOT NULL,
    registered_at INTEGER NOT NULL
);

CREATE TRIGGER passkey_keys_no_update BEFORE UPDATE ON passkey_keys
BEGIN SELECT RAISE(ABORT, 'passkey_keys is append-only'); END;
CREATE TRIGGER passkey_keys_no_delete BEFORE DELETE ON passkey_keys
BEGIN SELECT RAISE(ABORT, 'passkey_keys is append-only'); END;
