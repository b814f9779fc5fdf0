-- 0001: roles and database/schema privileges.
--
-- Roles are cluster-wide, so another database on the same cluster (the test suite's throwaway database,
-- for one) runs this again: every role is created only when missing. An existing role's password is never
-- touched: the passwords below are development defaults, and production creates or rotates these roles
-- from its secret store before or after migrating.
DO $$
BEGIN
  -- Owns every table, function and partition. NOLOGIN: reachable only through SET ROLE by an admin,
  -- or as the definer of the partition-maintenance function.
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hashinsight_owner') THEN
    CREATE ROLE hashinsight_owner NOLOGIN;
  END IF;
  -- The API (DATABASE_URL): neither owner nor superuser, so Row-Level Security always applies to it.
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hashinsight_api') THEN
    CREATE ROLE hashinsight_api LOGIN PASSWORD 'hashinsight_api';
  END IF;
  -- The Kafka consumers (WORKER_DATABASE_URL): least privilege, also under RLS (app.tenant_id per event).
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hashinsight_worker') THEN
    CREATE ROLE hashinsight_worker LOGIN PASSWORD 'hashinsight_worker';
  END IF;
  -- Owns the one cross-tenant aggregate the health endpoint needs (hashinsight_outbox_stats);
  -- NOLOGIN, and its only table privilege is SELECT on event_outbox.
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hashinsight_ops') THEN
    CREATE ROLE hashinsight_ops NOLOGIN BYPASSRLS;
  END IF;
  -- Debezium's Postgres source: logical replication plus SELECT on event_outbox only.
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'debezium') THEN
    CREATE ROLE debezium LOGIN REPLICATION PASSWORD 'debezium';
  END IF;
END
$$;

-- Re-assert the attributes RLS depends on (harmless when already so; catches a hand-edited role).
ALTER ROLE hashinsight_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE hashinsight_api LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE hashinsight_worker LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE hashinsight_ops NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION BYPASSRLS;
ALTER ROLE debezium LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;

-- Only our roles may connect; the database name is whatever ADMIN_DATABASE_URL points at.
DO $$
BEGIN
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO hashinsight_api, hashinsight_worker, debezium',
                 current_database());
END
$$;

-- PostgreSQL 15 already denies CREATE on public to PUBLIC; say so explicitly, and let only the owner create.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO hashinsight_owner;
GRANT USAGE ON SCHEMA public TO hashinsight_api, hashinsight_worker, hashinsight_ops, debezium;
