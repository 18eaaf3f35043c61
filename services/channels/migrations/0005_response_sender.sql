-- Where a reply came from: WhatsApp's 24-hour window belongs to one number, not a debtor.
ALTER TABLE responses ADD COLUMN sender TEXT NOT NULL DEFAULT '';
