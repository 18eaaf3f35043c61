-- Lookups by debtor and invoice alone (without tenant) on the ingestion path.
CREATE INDEX contact_points_by_debtor_only ON contact_points (debtor_id, channel);
CREATE INDEX promises_by_invoice ON promises (invoice_id) WHERE state = 'open';
