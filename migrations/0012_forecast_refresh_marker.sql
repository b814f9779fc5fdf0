-- 0012: when forecasts were last computed, kept in one row.
--
-- /api/health's forecast_freshness_sec read max(computed_at) over today's forecast_daily partition: a scan of
-- every user's row for today, ~100 ms per health call once the table had grown. Whoever refreshes forecasts
-- (app/service_layer/forecast.py) now stamps this row in the same transaction, and the health function reads it.
SET LOCAL ROLE hashinsight_owner;
CREATE TABLE forecast_refresh (
  singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  computed_at timestamptz NOT NULL
);
INSERT INTO forecast_refresh (computed_at) SELECT max(computed_at) FROM forecast_daily HAVING max(computed_at) IS NOT NULL;
RESET ROLE;

GRANT SELECT, INSERT, UPDATE ON forecast_refresh TO hashinsight_worker;
GRANT SELECT ON forecast_refresh TO hashinsight_ops;

CREATE OR REPLACE FUNCTION hashinsight_forecast_freshness(OUT newest_computed_at timestamptz)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
  SELECT computed_at FROM public.forecast_refresh
$$;
