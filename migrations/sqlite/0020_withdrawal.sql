-- When an agent was last disabled: its requests made until then are withdrawn for good, so enabling it
-- again brings back none of their approvals (`ciba::poll`).
ALTER TABLE clients ADD COLUMN last_disabled_at INTEGER;
