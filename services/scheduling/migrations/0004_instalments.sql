-- Instalment reminders of a payment plan: what is due and when, instead of the invoice's.
ALTER TABLE reminders ADD COLUMN amount_due_minor BIGINT;
ALTER TABLE reminders ADD COLUMN amount_due_currency TEXT;
ALTER TABLE reminders ADD COLUMN due_date DATE;
