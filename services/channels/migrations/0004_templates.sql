-- A tenant's own wording of a template, per language; the shipped templates fill the gaps.
CREATE TABLE templates (
    tenant_id   TEXT NOT NULL,
    template_id TEXT NOT NULL,
    language    TEXT NOT NULL CHECK (language IN ('es', 'pt', 'en')),
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, template_id, language)
);
-- The 24-hour WhatsApp window starts at the debtor's last message to us.
CREATE INDEX responses_by_debtor ON responses (tenant_id, debtor_id, channel, received_at);
