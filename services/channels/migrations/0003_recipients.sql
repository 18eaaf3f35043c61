-- Where each message went, so a reply from that address or number finds its debtor.
ALTER TABLE deliveries ADD COLUMN recipient TEXT NOT NULL DEFAULT '';
CREATE INDEX deliveries_by_recipient ON deliveries (recipient, created_at);
CREATE INDEX deliveries_by_provider_id ON deliveries (provider_message_id);
