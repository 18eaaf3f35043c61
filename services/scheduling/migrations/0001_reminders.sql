-- The latest state of each invoice as accounts published it, so a reminder can be re-checked
-- right before it is emitted.
CREATE TABLE invoices (
    invoice_id UUID PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    debtor_id  UUID NOT NULL,
    status     TEXT NOT NULL,
    version    BIGINT NOT NULL,
    -- recobro.v1.InvoiceChanged as last received.
    snapshot   BYTEA NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Durable timers: one row per (invoice, ladder step). Any number of scheduler replicas claim
-- due rows with FOR UPDATE SKIP LOCKED, and emit through the outbox in the same transaction.
CREATE TABLE reminders (
    reminder_id        UUID PRIMARY KEY,
    tenant_id          TEXT NOT NULL,
    debtor_id          UUID NOT NULL,
    invoice_id         UUID NOT NULL REFERENCES invoices,
    step               TEXT NOT NULL,
    channel            TEXT NOT NULL,
    template_id        TEXT NOT NULL,
    fire_at            TIMESTAMPTZ NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('pending', 'emitted', 'cancelled', 'skipped')),
    -- The trace of the invoice event that planned it; the emission links to it.
    origin_traceparent TEXT,
    emitted_at         TIMESTAMPTZ,
    UNIQUE (invoice_id, step)
);
CREATE INDEX reminders_due ON reminders (fire_at) WHERE state = 'pending';
