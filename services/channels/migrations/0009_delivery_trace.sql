-- The trace a delivery's record continues (W3C traceparent), so that a reply to it, days later,
-- starts a trace linked to it.
ALTER TABLE deliveries ADD COLUMN traceparent TEXT;
