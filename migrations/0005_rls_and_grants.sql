-- 0005: Row-Level Security and every grant, in one place so the access model reads top to bottom.

-- Enables and forces RLS on a tenant table and (re)creates its tenant_isolation policy. Kept for later
-- migrations: a new tenant table calls this and gets exactly the same policy.
-- NULLIF: an unset setting gives NULL, and so does a setting set earlier in the session and later reset
-- (a custom GUC then reads as '', not NULL); tenant_id = NULL is never true, so such a session sees no
-- rows and can insert none. (tenant_id is never '' either: every tenant table checks it.)
CREATE FUNCTION hashinsight_secure_tenant_table(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
  EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
  EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %s', tbl);
  EXECUTE format($p$CREATE POLICY tenant_isolation ON %s
                   USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), ''))
                   WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), ''))$p$, tbl);
END
$fn$;
ALTER FUNCTION hashinsight_secure_tenant_table(regclass) OWNER TO hashinsight_owner;
REVOKE ALL ON FUNCTION hashinsight_secure_tenant_table(regclass) FROM PUBLIC;

SELECT hashinsight_secure_tenant_table(t)
FROM unnest(ARRAY[
  'users', 'user_roles', 'user_subscriptions', 'miners', 'user_miners', 'inventory', 'miner_telemetry',
  'forecast_daily', 'event_outbox', 'consumer_inbox', 'audit_logs', 'user_portfolio', 'user_analytics',
  'idempotency_keys', 'trades'
]::regclass[]) AS t;

-- Debezium reads the WAL (where RLS does not apply) and may snapshot event_outbox: let its SELECT see every
-- tenant's outbox rows, which it streams anyway. It has no privilege on any other table.
DROP POLICY IF EXISTS cdc_read ON event_outbox;
CREATE POLICY cdc_read ON event_outbox FOR SELECT TO debezium USING (true);

-- Start from nothing so re-running this file (or a hand-made grant) cannot leave extra privileges behind.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM hashinsight_api, hashinsight_worker, debezium, PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM hashinsight_api, hashinsight_worker, debezium, PUBLIC;
-- Only our own functions: an extension's (TimescaleDB lives in public too) keep their default EXECUTE.
DO $$
DECLARE
  fn regprocedure;
BEGIN
  FOR fn IN SELECT p.oid FROM pg_proc p
            WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'hashinsight\_%'
  LOOP
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM hashinsight_api, hashinsight_worker, debezium, PUBLIC', fn);
  END LOOP;
END
$$;

------------------------------------------------------------------------------------------------------
-- hashinsight_api (DATABASE_URL)
------------------------------------------------------------------------------------------------------
GRANT SELECT ON roles, permissions, role_permissions, subscription_plans, miner_models, network_snapshots
  TO hashinsight_api;
-- Just-in-time provisioning of a token's user (and its default role and subscription).
GRANT SELECT, INSERT, UPDATE ON users, user_subscriptions TO hashinsight_api;
GRANT SELECT, INSERT ON user_roles TO hashinsight_api;
-- Business writes.
GRANT SELECT, INSERT, UPDATE ON miners, inventory TO hashinsight_api;
GRANT SELECT, INSERT ON user_miners, trades TO hashinsight_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO hashinsight_api;
-- The outbox row is inserted in the business transaction; SELECT serves INSERT ... RETURNING and lookups.
GRANT SELECT, INSERT ON event_outbox TO hashinsight_api;
-- Append-only: no UPDATE, no DELETE, no TRUNCATE.
GRANT SELECT, INSERT ON audit_logs TO hashinsight_api;
-- Reads of what the consumers maintain.
GRANT SELECT ON user_portfolio, user_analytics, forecast_daily, miner_telemetry TO hashinsight_api;
GRANT EXECUTE ON FUNCTION hashinsight_outbox_stats() TO hashinsight_api;

------------------------------------------------------------------------------------------------------
-- hashinsight_worker (WORKER_DATABASE_URL): reads the fleet, rebuilds derived rows, marks the inbox.
------------------------------------------------------------------------------------------------------
GRANT SELECT ON miner_models, network_snapshots, users, miners, user_miners TO hashinsight_worker;
-- Derived rows are rebuilt wholesale (delete the user's rows, insert the new ones) or upserted.
GRANT SELECT, INSERT, UPDATE, DELETE ON user_portfolio, user_analytics, forecast_daily TO hashinsight_worker;
-- Inbox: INSERT ... ON CONFLICT DO NOTHING RETURNING needs SELECT; DELETE lets the replay tool forget
-- the marks of a time window so those events are processed again.
GRANT SELECT, INSERT, DELETE ON consumer_inbox TO hashinsight_worker;
GRANT SELECT ON event_outbox TO hashinsight_worker;
GRANT UPDATE (processed, processed_at) ON event_outbox TO hashinsight_worker;
-- Audit what the consumers change; no SELECT (so no INSERT ... RETURNING either).
GRANT INSERT ON audit_logs TO hashinsight_worker;
GRANT EXECUTE ON FUNCTION hashinsight_outbox_stats() TO hashinsight_worker;
-- The intel consumer keeps forecast_daily's partitions ahead of the calendar.
GRANT EXECUTE ON FUNCTION hashinsight_ensure_partitions(integer, integer) TO hashinsight_worker;

------------------------------------------------------------------------------------------------------
-- debezium: SELECT on event_outbox only (plus REPLICATION and the publication from 0004).
------------------------------------------------------------------------------------------------------
GRANT SELECT ON event_outbox TO debezium;
