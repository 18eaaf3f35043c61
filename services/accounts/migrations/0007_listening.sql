-- Listening (issue 19): what a debtor answers acts on the ledger, and what a machine cannot
-- close goes to a person's work queue.

-- The debtor says it is paid: collection pauses through this date (the debtor's local date)
-- while a person confirms. Lifted by a payment, by a person, or when the date has passed.
ALTER TABLE invoices ADD COLUMN claimed_paid_until DATE;
-- The expiry sweep finds standing holds without scanning the ledger.
CREATE INDEX invoices_claimed_paid ON invoices (claimed_paid_until) WHERE claimed_paid_until IS NOT NULL;

-- The collectors' work queue. One item per debtor response (response_id unique per tenant),
-- or per broken promise (promise_id).
CREATE TABLE work_items (
    work_item_id UUID PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    state        TEXT NOT NULL,
    debtor_id    UUID NOT NULL REFERENCES debtors,
    invoice_ids  UUID[] NOT NULL,
    response_id  TEXT,
    promise_id   UUID,
    reply_text   TEXT NOT NULL DEFAULT '',
    reason       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    due_at       TIMESTAMPTZ NOT NULL,
    assignee     TEXT NOT NULL DEFAULT '',
    outcome      TEXT,
    resolved_at  TIMESTAMPTZ,
    resolved_by  TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX work_items_by_response ON work_items (tenant_id, response_id) WHERE response_id IS NOT NULL;
CREATE UNIQUE INDEX work_items_by_promise ON work_items (promise_id) WHERE promise_id IS NOT NULL;
-- Listing: a tenant's items, soonest due first.
CREATE INDEX work_items_queue ON work_items (tenant_id, due_at, work_item_id);

CREATE TABLE work_item_notes (
    work_item_id UUID NOT NULL REFERENCES work_items,
    seq          BIGSERIAL,
    author       TEXT NOT NULL,
    text         TEXT NOT NULL,
    at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (work_item_id, seq)
);
