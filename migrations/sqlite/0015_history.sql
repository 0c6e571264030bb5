-- The admin history. `action_text` and `target_text` copy the action's two headline fields out of
-- `authorization_details` so history can be searched without parsing JSON per row; the record digest
-- covers `authorization_details`, which is what every page and token shows. Newest first, with a
-- keyset cursor on (created_at, id): an index in that order serves the unfiltered history and the
-- date range; the existing (client_id, created_at) and (approver_id, created_at) ones serve those
-- filters.
ALTER TABLE auth_requests ADD COLUMN action_text TEXT NOT NULL DEFAULT '';
ALTER TABLE auth_requests ADD COLUMN target_text TEXT NOT NULL DEFAULT '';
UPDATE auth_requests SET
    action_text = COALESCE(json_extract(authorization_details, '$[0].action'), ''),
    target_text = COALESCE(json_extract(authorization_details, '$[0].target'), '');
CREATE INDEX auth_requests_history ON auth_requests (created_at, id);
