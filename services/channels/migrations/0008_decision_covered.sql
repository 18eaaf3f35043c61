-- A statement's decision names the reminders it covers, so the audit of each invoice's reminder
-- is found from ExplainContacts too (empty for one invoice's reminder).
ALTER TABLE contact_decisions ADD COLUMN covered UUID[] NOT NULL DEFAULT '{}';
