-- Reminders held while their invoice is disputed, promised or in a payment plan.
ALTER TABLE reminders DROP CONSTRAINT reminders_state_check;
ALTER TABLE reminders ADD CONSTRAINT reminders_state_check
    CHECK (state IN ('pending', 'emitted', 'cancelled', 'skipped', 'paused'));
