-- Issue 19: a claimed-paid hold that ended with no payment recorded; the reminders that follow
-- acknowledge the debtor's claim until a payment, a new claim or a person clears it.
ALTER TABLE invoices ADD COLUMN claim_unconfirmed BOOLEAN NOT NULL DEFAULT false;
