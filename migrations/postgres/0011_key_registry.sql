-- The passkey key registry as a chain: every public key an approver registered, in order, each entry
-- hashed together with the previous entry's hash and signed by the server (`identity::registry`). A
-- passkey is accepted for sign-in and decisions only with a sealed entry here, so a row written into
-- `passkeys` by hand approves nothing. `passkey_keys` (0005) is its unsealed predecessor, read once
-- when this table is first filled.
CREATE TABLE key_registry (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    credential_id TEXT NOT NULL UNIQUE,
    approver_id TEXT NOT NULL REFERENCES approvers (id),
    -- webauthn-rs's COSEKey, as JSON: the form decision records keep.
    public_key TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    prev_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL,
    jws TEXT NOT NULL
);

CREATE FUNCTION key_registry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'key_registry is append-only';
END;
$$;
CREATE TRIGGER key_registry_no_change BEFORE UPDATE OR DELETE ON key_registry
FOR EACH ROW EXECUTE FUNCTION key_registry_append_only();
CREATE TRIGGER key_registry_no_truncate BEFORE TRUNCATE ON key_registry
FOR EACH STATEMENT EXECUTE FUNCTION key_registry_append_only();
