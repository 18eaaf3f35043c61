-- The receivables ledger. Ids are UUIDv5 of (tenant, external id), so the same ERP record
-- always maps to the same row.
CREATE TABLE tenants (
    tenant_id  TEXT PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE debtors (
    debtor_id   UUID PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants,
    external_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('company', 'consumer')),
    time_zone   TEXT NOT NULL,
    locale      TEXT NOT NULL,
    country     TEXT NOT NULL,
    email       TEXT,
    phone       TEXT,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, external_id)
);

CREATE TABLE invoices (
    invoice_id   UUID PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants,
    debtor_id    UUID NOT NULL REFERENCES debtors,
    external_id  TEXT NOT NULL,
    number       TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor >= 0),
    currency     TEXT NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    issue_date   DATE NOT NULL,
    due_date     DATE NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('open', 'paid', 'cancelled')),
    -- The ERP's version: an older event never overwrites a newer one.
    version      BIGINT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, external_id)
);
CREATE INDEX invoices_by_debtor ON invoices (tenant_id, debtor_id);

-- Every ERP event applied, so a redelivered event has no second effect.
CREATE TABLE ingested_events (
    tenant_id   TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, event_id)
);
