-- Every contact decision with the rule and pack version behind it: "why was this debtor
-- contacted, or not, on this date".
CREATE TABLE contact_decisions (
    id          BIGSERIAL PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    debtor_id   UUID NOT NULL,
    reminder_id UUID NOT NULL,
    channel     TEXT NOT NULL,
    verdict     TEXT NOT NULL CHECK (verdict IN ('allowed', 'deferred', 'suppressed')),
    not_before  TIMESTAMPTZ,
    rule        TEXT NOT NULL,
    pack        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    decided_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX contact_decisions_by_debtor ON contact_decisions (tenant_id, debtor_id, decided_at);

-- Channels a debtor asked not to be contacted on; honoured from the moment it is written.
CREATE TABLE opt_outs (
    tenant_id    TEXT NOT NULL,
    debtor_id    UUID NOT NULL,
    channel      TEXT NOT NULL,
    source       TEXT NOT NULL,
    opted_out_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, debtor_id, channel)
);

-- Where each debtor is, as the last reminder said: the contact budget view needs it.
CREATE TABLE debtors (
    tenant_id  TEXT NOT NULL,
    debtor_id  UUID NOT NULL,
    time_zone  TEXT NOT NULL,
    country    TEXT NOT NULL,
    region     TEXT NOT NULL DEFAULT '',
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, debtor_id)
);

-- A final outcome decided by a rule (suppressed) names it.
ALTER TABLE deliveries ADD COLUMN rule TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN pack TEXT NOT NULL DEFAULT '';
