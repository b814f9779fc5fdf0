-- 0010: Idempotency-Key records expire.
--
-- A key protects a client's retries, which come within minutes; its stored response is kept for
-- IDEMPOTENCY_RETENTION_HOURS (default 24) and then deleted in batches by the portfolio worker, next to the
-- outbox purge, so the table stays bounded. A key reused after that is a new request. Cross-tenant, so the
-- same SECURITY DEFINER shape as 0007: an age in, a count out.
GRANT SELECT, DELETE ON idempotency_keys TO hashinsight_ops;

CREATE FUNCTION hashinsight_purge_idempotency_keys(retention interval, max_rows integer DEFAULT 10000)
RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
  WITH doomed AS (
    SELECT tenant_id, user_id, key FROM public.idempotency_keys
     WHERE created_at < now() - retention AND status_code IS NOT NULL
     ORDER BY created_at
     LIMIT max_rows),
  gone AS (
    DELETE FROM public.idempotency_keys k USING doomed
     WHERE (k.tenant_id, k.user_id, k.key) = (doomed.tenant_id, doomed.user_id, doomed.key)
    RETURNING 1)
  SELECT count(*)::integer FROM gone
$$;
ALTER FUNCTION hashinsight_purge_idempotency_keys(interval, integer) OWNER TO hashinsight_ops;
REVOKE ALL ON FUNCTION hashinsight_purge_idempotency_keys(interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hashinsight_purge_idempotency_keys(interval, integer) TO hashinsight_worker;
