-- Escalations (issue 19): a ladder's `collector` step queues a work item; an agency, credit
-- bureau or legal step is a hand-off record whose state the creditor can follow.

-- One work item per escalation.
ALTER TABLE work_items ADD COLUMN escalation_id TEXT;
CREATE UNIQUE INDEX work_items_by_escalation ON work_items (tenant_id, escalation_id) WHERE escalation_id IS NOT NULL;

CREATE TABLE handoffs (
    handoff_id    UUID PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    escalation_id TEXT NOT NULL,
    debtor_id     UUID NOT NULL REFERENCES debtors,
    invoice_id    UUID NOT NULL REFERENCES invoices,
    target        TEXT NOT NULL,
    state         TEXT NOT NULL,
    step          TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by    TEXT NOT NULL DEFAULT '',
    note          TEXT NOT NULL DEFAULT '',
    UNIQUE (tenant_id, escalation_id)
);
-- Listing: a tenant's hand-offs, oldest first.
CREATE INDEX handoffs_by_tenant ON handoffs (tenant_id, created_at, handoff_id);
