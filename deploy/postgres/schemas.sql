-- Recobro's schemas in one database, run by an administrator (the local stack's up.sh, the
-- end-to-end tests for each test database, a DBA in production). Idempotent.
--
-- Each service has two roles, made beforehand with their passwords (up.sh; in production your
-- DBA or operator):
--   <service>_owner  owns the schema; `recobro-<service> migrate` runs as it (a Job/init step)
--   <service>        what the running service logs in as: reads and writes rows of its own
--                    schema's tables, and nothing else: no CREATE, ALTER or DROP, no other schema
-- Nobody else may create anything in this database (not even temporary tables).

DO $$ BEGIN
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO accounts, accounts_owner, scheduling, scheduling_owner, channels, channels_owner', current_database());
END $$;
REVOKE ALL ON SCHEMA public FROM PUBLIC;

CREATE SCHEMA IF NOT EXISTS accounts AUTHORIZATION accounts_owner;
CREATE SCHEMA IF NOT EXISTS scheduling AUTHORIZATION scheduling_owner;
CREATE SCHEMA IF NOT EXISTS channels AUTHORIZATION channels_owner;

-- Only the owner and its service see a schema.
REVOKE ALL ON SCHEMA accounts, scheduling, channels FROM PUBLIC;
GRANT USAGE ON SCHEMA accounts TO accounts;
GRANT USAGE ON SCHEMA scheduling TO scheduling;
GRANT USAGE ON SCHEMA channels TO channels;

-- Rows, not structure: for every table and sequence the owner makes (migrations), now or later.
ALTER DEFAULT PRIVILEGES FOR ROLE accounts_owner IN SCHEMA accounts
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO accounts;
ALTER DEFAULT PRIVILEGES FOR ROLE accounts_owner IN SCHEMA accounts
  GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO accounts;
ALTER DEFAULT PRIVILEGES FOR ROLE scheduling_owner IN SCHEMA scheduling
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO scheduling;
ALTER DEFAULT PRIVILEGES FOR ROLE scheduling_owner IN SCHEMA scheduling
  GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO scheduling;
ALTER DEFAULT PRIVILEGES FOR ROLE channels_owner IN SCHEMA channels
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO channels;
ALTER DEFAULT PRIVILEGES FOR ROLE channels_owner IN SCHEMA channels
  GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO channels;
