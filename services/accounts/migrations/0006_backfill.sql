-- Records for what was stored before records were published (issue 13): channels decides on
-- debtors' records and tenants' roles, so a tenant or debtor that never had one is published
-- once at start (`backfill.rs`). Debtors: revision 0 means never published. Tenants: this flag,
-- true from now on whenever UpsertTenant publishes the role.
ALTER TABLE tenants ADD COLUMN role_published BOOLEAN NOT NULL DEFAULT false;
