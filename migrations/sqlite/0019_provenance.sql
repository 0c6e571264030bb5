-- How each passkey's key arrived (`identity::provenance`), inside its signed registry entry; NULL for
-- keys sealed before it was recorded. Invitations get a public id (the token hash is a secret's
-- digest and never leaves the database) and the admin who issued them (NULL: the operator, on the
-- server's command line).
ALTER TABLE key_registry ADD COLUMN provenance TEXT;
ALTER TABLE invitations ADD COLUMN id TEXT;
ALTER TABLE invitations ADD COLUMN issued_by TEXT;
