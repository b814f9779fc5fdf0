-- 0050: market data through the API, and the ids a market-data fan-out walks.
--
-- POST /api/market/snapshots inserts network_snapshots rows (global reference data, no tenant) in the same
-- transaction as its market.snapshot_recorded outbox event and audit row.
-- The fan-out consumers recalculate every user of every tenant. The worker role is under RLS and sees one
-- tenant at a time, so the list of (tenant, user) ids comes from one SECURITY DEFINER function owned by
-- hashinsight_ops (BYPASSRLS) that returns ids only, never a row's contents; per tenant the worker then
-- reads the fleets under RLS as usual.
GRANT INSERT ON network_snapshots TO hashinsight_api;
GRANT SELECT (tenant_id, id) ON users TO hashinsight_ops;

CREATE FUNCTION hashinsight_fanout_users() RETURNS TABLE (tenant_id text, user_id text)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
  SELECT u.tenant_id, u.id FROM public.users u ORDER BY u.tenant_id, u.id
$$;
ALTER FUNCTION hashinsight_fanout_users() OWNER TO hashinsight_ops;
REVOKE ALL ON FUNCTION hashinsight_fanout_users() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hashinsight_fanout_users() TO hashinsight_worker;
