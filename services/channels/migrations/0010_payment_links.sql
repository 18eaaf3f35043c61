-- Payment links: each checkout opened at a provider for what an invoice owed at that moment
-- (one per idempotency key, so a double click or a retry reuses it), and each payment a
-- provider reported for one of them (once per provider payment id), with how much of it was
-- given back since.
CREATE TABLE checkouts (
    checkout_id          UUID PRIMARY KEY,
    tenant_id            TEXT NOT NULL,
    invoice_id           UUID NOT NULL,
    provider             TEXT NOT NULL CHECK (provider IN ('sandbox', 'stripe', 'mercadopago')),
    amount_minor         BIGINT NOT NULL CHECK (amount_minor > 0),
    currency             TEXT NOT NULL,
    idempotency_key      TEXT NOT NULL UNIQUE,
    provider_checkout_id TEXT,
    url                  TEXT,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX checkouts_by_provider_id ON checkouts (provider, provider_checkout_id)
    WHERE provider_checkout_id IS NOT NULL;
CREATE TABLE link_payments (
    provider       TEXT NOT NULL,
    payment_id     TEXT NOT NULL,
    checkout_id    UUID NOT NULL REFERENCES checkouts,
    amount_minor   BIGINT NOT NULL,
    currency       TEXT NOT NULL,
    reversed_minor BIGINT NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, payment_id)
);
