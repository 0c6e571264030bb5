-- A recovery any admin cancels before it is approved (a second admin declining it, or the first
-- taking it back): it is no longer open and can never be approved. Kept in the admin log like
-- every change to who can approve.
ALTER TABLE recoveries ADD COLUMN cancelled_by TEXT;
ALTER TABLE recoveries ADD COLUMN cancelled_at INTEGER;
