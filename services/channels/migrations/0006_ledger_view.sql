-- Channels' view of the ledger, kept by accounts.events.v1: whom it may contact comes from
-- here, never from a caller or a reminder.
-- Each debtor's latest DebtorChanged (encoded), applied only when its revision is newer.
CREATE TABLE ledger_debtors (
    tenant_id  TEXT NOT NULL,
    debtor_id  UUID NOT NULL,
    revision   BIGINT NOT NULL,
    time_zone  TEXT NOT NULL,
    country    TEXT NOT NULL,
    region     TEXT NOT NULL DEFAULT '',
    snapshot   BYTEA NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, debtor_id)
);
-- Each tenant's role (creditor or agency): provider eligibility depends on it.
CREATE TABLE ledger_tenants (
    tenant_id  TEXT PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('creditor', 'agency')),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Each invoice's latest snapshot (encoded Invoice), for one-off messages about it.
CREATE TABLE ledger_invoices (
    tenant_id  TEXT NOT NULL,
    invoice_id UUID NOT NULL,
    debtor_id  UUID NOT NULL,
    revision   BIGINT NOT NULL,
    snapshot   BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, invoice_id)
);
-- How far the view has read accounts.events.v1, written with what was read: a batch of
-- reminders waits until the view has caught up with the topic's end.
CREATE TABLE ledger_offsets (
    topic       TEXT NOT NULL,
    partition   INT NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (topic, partition)
);
-- The old view of where debtors are (from reminders) gives way to the ledger's.
DROP TABLE debtors;

-- Opt-outs channels received (a reply, a one-click unsubscribe, a bounce or complaint), per
-- contact point. They count from the moment they are written, before accounts has recorded
-- them; a consent accounts records later (the debtor granted it again) outranks them.
CREATE TABLE point_withdrawals (
    tenant_id    TEXT NOT NULL,
    point_id     UUID NOT NULL,
    source       TEXT NOT NULL,
    withdrawn_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, point_id)
);
DROP TABLE opt_outs;
-- A STOP sent to one of our sender numbers: carriers expect it to hold for everyone who
-- writes from that sender, every tenant included.
CREATE TABLE sender_opt_outs (
    channel      TEXT NOT NULL,
    sender       TEXT NOT NULL,
    address      TEXT NOT NULL,
    opted_out_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, sender, address)
);
-- The contact point and sender each message went to and from.
ALTER TABLE deliveries ADD COLUMN point_id UUID;
ALTER TABLE deliveries ADD COLUMN sender TEXT NOT NULL DEFAULT '';
CREATE INDEX deliveries_by_recipient_and_sender ON deliveries (recipient, channel, sender, created_at);
-- Provider events already handled (keyed by the provider's own ids): a retried webhook has no
-- second effect.
CREATE TABLE provider_events (
    provider    TEXT NOT NULL,
    event_key   TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_key)
);
