-- Every passkey public key ever registered, kept after the passkey itself is removed, so that
-- `audit verify` can confirm the key a decision record names: append-only, like the decisions.
CREATE TABLE passkey_keys (
    credential_id TEXT PRIMARY KEY,
    approver_id TEXT NOT NULL REFERENCES approvers (id),
    -- webauthn-rs's COSEKey, as JSON: the form decision records keep.
    public_key TEXT NOT NULL,
    registered_at BIGINT NOT NULL
);

CREATE FUNCTION passkey_keys_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'passkey_keys is append-only';
END;
$$;
CREATE TRIGGER passkey_keys_no_change BEFORE UPDATE OR DELETE ON passkey_keys
FOR EACH ROW EXECUTE FUNCTION passkey_keys_append_only();
