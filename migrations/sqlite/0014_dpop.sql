-- DPoP (RFC 9449). `clients.dpop_bound` is the client metadata of §5.2 (`client create --dpop`): its
-- token requests must carry a proof, and a push client must name its key at /bc-authorize.
-- `auth_requests.dpop_jkt` is the key thumbprint a client bound its request to (§10's `dpop_jkt`):
-- only a proof by that key redeems it, and pushed tokens are bound to it.
ALTER TABLE clients ADD COLUMN dpop_bound INTEGER NOT NULL DEFAULT 0;
ALTER TABLE auth_requests ADD COLUMN dpop_jkt TEXT;
