-- Clients registered as resource servers (`client create --resource-server`): the tools agents call.
-- Only they may introspect tokens (RFC 7662 §2.1: the endpoint must not let any client scan tokens).
ALTER TABLE clients ADD COLUMN resource_server INTEGER NOT NULL DEFAULT 0;
