-- One row per reminder: the primary key is what makes a reminder go out once.
CREATE TABLE deliveries (
    reminder_id         UUID PRIMARY KEY,
    tenant_id           TEXT NOT NULL,
    debtor_id           UUID NOT NULL,
    invoice_id          UUID,
    channel             TEXT NOT NULL,
    provider            TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('sent', 'delivered', 'read', 'failed', 'suppressed')),
    reason              TEXT NOT NULL DEFAULT '',
    provider_message_id TEXT NOT NULL DEFAULT '',
    subject             TEXT NOT NULL DEFAULT '',
    body                TEXT NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_by_debtor ON deliveries (tenant_id, debtor_id, created_at);

-- What debtors answered, classified.
CREATE TABLE responses (
    response_id UUID PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    debtor_id   UUID NOT NULL,
    channel     TEXT NOT NULL,
    reminder_id UUID,
    text        TEXT NOT NULL,
    intent      TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
