-- Which strategy and arm planned each reminder, and what the step does when it falls due.
ALTER TABLE reminders ADD COLUMN strategy_id TEXT NOT NULL DEFAULT '';
ALTER TABLE reminders ADD COLUMN arm TEXT NOT NULL DEFAULT '';
-- "message" or "escalate:<kind>".
ALTER TABLE reminders ADD COLUMN action TEXT NOT NULL DEFAULT 'message';
-- Channels in fallback order, and contact roles in order of preference.
ALTER TABLE reminders ADD COLUMN channels TEXT[] NOT NULL DEFAULT '{}';
ALTER TABLE reminders ADD COLUMN roles TEXT[] NOT NULL DEFAULT '{}';
