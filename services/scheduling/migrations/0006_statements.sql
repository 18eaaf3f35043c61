-- Whether a message reminder may go out inside one statement with the debtor's other
-- reminders due the same local day (the strategy consolidates the debtor's kind). Rows planned
-- before statements existed go out alone, as they were planned.
ALTER TABLE reminders ADD COLUMN consolidate BOOLEAN NOT NULL DEFAULT false;
-- A due statement claims the debtor's other pending reminders of the same day. Only those that
-- may join one are indexed: the others pay nothing for it when planned or fired.
CREATE INDEX reminders_pending_statements ON reminders (debtor_id, fire_at) WHERE state = 'pending' AND consolidate;
