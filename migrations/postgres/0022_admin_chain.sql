-- The admin log becomes a hash chain (`admin::log`): each entry's hash covers its content and the
-- hash before it, and the checkpoint names the head, so an entry edited, deleted or planted beneath
-- the append-only triggers is seen. Entries that change who can approve carry the admin's fresh
-- passkey assertion over that very change (`authorisation`, JSON). Entries written before the chain
-- have no hash; the chain starts after them.
ALTER TABLE admin_log ADD COLUMN authorisation TEXT;
ALTER TABLE admin_log ADD COLUMN prev_hash TEXT;
ALTER TABLE admin_log ADD COLUMN entry_hash TEXT;
