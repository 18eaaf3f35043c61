-- Payments through payment links can be refunded or charged back: a settlement keeps how much
-- of it was given back, and each reversal is recorded once, by its id at the provider.
ALTER TABLE settlements ADD COLUMN reversed_minor BIGINT NOT NULL DEFAULT 0
    CHECK (reversed_minor >= 0 AND reversed_minor <= amount_minor);
CREATE TABLE settlement_reversals (
    tenant_id     TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    settlement_id UUID NOT NULL REFERENCES settlements,
    amount_minor  BIGINT NOT NULL CHECK (amount_minor > 0),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, external_id)
);
