-- Consent (issue 13): a message goes only where the ledger says. Every change to a debtor's
-- record is published whole (DebtorChanged) with a rising revision; an address the ERP replaced
-- is retired, not left beside the new one; legal holds stop all extrajudicial contact; opt-outs
-- channels received are applied once each.

-- Accounts' counter for each debtor's record, carried by DebtorChanged so that consumers apply
-- only a newer snapshot. 0: never published.
ALTER TABLE debtors ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;

-- An address the ERP no longer has: kept as history with its consent, never used again.
ALTER TABLE contact_points ADD COLUMN retired_at TIMESTAMPTZ;
ALTER TABLE contact_points ADD COLUMN retired_reason TEXT NOT NULL DEFAULT '';

-- Snapshots read a batch of debtors' contacts by debtor id alone.
CREATE INDEX contacts_by_debtor_only ON contacts (debtor_id);

-- Holds on all extrajudicial contact with a debtor (a lawsuit served, bankruptcy, a
-- cease-communication request). Lifted holds stay as history, with who lifted them and why.
CREATE TABLE legal_holds (
    hold_id     UUID PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    debtor_id   UUID NOT NULL REFERENCES debtors,
    reason      TEXT NOT NULL,
    source      TEXT NOT NULL,
    placed_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    lifted_at   TIMESTAMPTZ,
    lift_reason TEXT NOT NULL DEFAULT '',
    lift_source TEXT NOT NULL DEFAULT ''
);
-- At most one hold stands per debtor; snapshots look it up by debtor through this index.
CREATE UNIQUE INDEX legal_holds_one_standing ON legal_holds (debtor_id) WHERE lifted_at IS NULL;

-- Debtor responses (channel.responses.v1) already applied: a redelivered opt-out has no second
-- effect.
CREATE TABLE consumed_responses (
    tenant_id   TEXT NOT NULL,
    response_id TEXT NOT NULL,
    consumed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, response_id)
);
