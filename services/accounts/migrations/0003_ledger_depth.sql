-- Tenants say whether they collect their own receivables or act as an agency.
ALTER TABLE tenants ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE tenants ADD COLUMN role TEXT NOT NULL DEFAULT 'creditor' CHECK (role IN ('creditor', 'agency'));

ALTER TABLE debtors ADD COLUMN segment TEXT NOT NULL DEFAULT '';
ALTER TABLE debtors ADD COLUMN risk_score INT CHECK (risk_score BETWEEN 0 AND 100);

-- People at a debtor (B2B: treasury, accounts payable...), and how each may be reached.
CREATE TABLE contacts (
    contact_id UUID PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    debtor_id  UUID NOT NULL REFERENCES debtors,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('treasury', 'accounts_payable', 'purchasing', 'decision_maker', 'other'))
);
CREATE INDEX contacts_by_debtor ON contacts (tenant_id, debtor_id);

CREATE TABLE contact_points (
    point_id       UUID PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    debtor_id      UUID NOT NULL REFERENCES debtors,
    contact_id     UUID NOT NULL REFERENCES contacts ON DELETE CASCADE,
    channel        TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'whatsapp')),
    address        TEXT NOT NULL,
    consent        TEXT NOT NULL CHECK (consent IN ('granted', 'withdrawn')),
    consent_source TEXT NOT NULL,
    consent_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    preferred      BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX contact_points_by_debtor ON contact_points (tenant_id, debtor_id);

-- Accounts' own change counter, and what has been settled so far.
ALTER TABLE invoices ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;
ALTER TABLE invoices ADD COLUMN settled_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE invoices ADD COLUMN plan_id UUID;

-- Payments (partial too), credit notes and write-offs.
CREATE TABLE settlements (
    settlement_id UUID PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    invoice_id    UUID NOT NULL REFERENCES invoices,
    kind          TEXT NOT NULL CHECK (kind IN ('payment', 'credit_note', 'write_off')),
    external_id   TEXT NOT NULL,
    amount_minor  BIGINT NOT NULL CHECK (amount_minor > 0),
    currency      TEXT NOT NULL,
    on_date       DATE NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, kind, external_id)
);
CREATE INDEX settlements_by_invoice ON settlements (invoice_id);

CREATE TABLE payment_plans (
    plan_id    UUID PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    debtor_id  UUID NOT NULL REFERENCES debtors,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE plan_instalments (
    plan_id      UUID NOT NULL REFERENCES payment_plans,
    seq          INT NOT NULL,
    due_date     DATE NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency     TEXT NOT NULL,
    PRIMARY KEY (plan_id, seq)
);

CREATE TABLE promises (
    promise_id    UUID PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    invoice_id    UUID NOT NULL REFERENCES invoices,
    promised_date DATE NOT NULL,
    amount_minor  BIGINT NOT NULL CHECK (amount_minor > 0),
    currency      TEXT NOT NULL,
    made_on       DATE NOT NULL,
    grace_days    INT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('open', 'kept', 'broken', 'cancelled')),
    decided_at    TIMESTAMPTZ
);
CREATE INDEX promises_open ON promises (promised_date) WHERE state = 'open';

CREATE TABLE disputes (
    dispute_id  UUID PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    invoice_id  UUID NOT NULL REFERENCES invoices,
    reason      TEXT NOT NULL,
    opened_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at TIMESTAMPTZ,
    resolution  TEXT
);
-- One open dispute per invoice.
CREATE UNIQUE INDEX disputes_one_open ON disputes (invoice_id) WHERE resolved_at IS NULL;
