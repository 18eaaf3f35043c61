-- A statement's delivery covers several invoices' reminders: each is recorded as delivered
-- through it (empty for one invoice's reminder).
ALTER TABLE deliveries ADD COLUMN covered UUID[] NOT NULL DEFAULT '{}';
