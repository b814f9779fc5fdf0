-- 0009: forecast_freshness_sec for /api/health.
--
-- How old the newest forecast for today is, across tenants: one SECURITY DEFINER aggregate owned by
-- hashinsight_ops (BYPASSRLS), returning one timestamp and never a row, like hashinsight_outbox_stats().
GRANT SELECT (day, computed_at) ON forecast_daily TO hashinsight_ops;

CREATE FUNCTION hashinsight_forecast_freshness(OUT newest_computed_at timestamptz)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
  SELECT max(computed_at) FROM public.forecast_daily WHERE day = (now() AT TIME ZONE 'UTC')::date
$$;
ALTER FUNCTION hashinsight_forecast_freshness() OWNER TO hashinsight_ops;
REVOKE ALL ON FUNCTION hashinsight_forecast_freshness() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hashinsight_forecast_freshness() TO hashinsight_api;
