-- How long an escalation waits after its invoice's last message (the strategy's
-- escalation_grace_days when it was planned; the shipped default for rows planned before).
ALTER TABLE reminders ADD COLUMN escalation_grace_days INT NOT NULL DEFAULT 3;
