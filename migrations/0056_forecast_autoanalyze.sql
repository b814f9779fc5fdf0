-- 0056: forecast_daily's partitions are analyzed when their rows change in number, not at every refresh.
--
-- A forecast refresh rewrites the user's row in each of the 30 day partitions ahead, in place: the keys and the
-- number of rows stay, only the figures change. Autovacuum counts every rewrite as a change, and at the default
-- (a tenth of the rows) it analyzed all 30 partitions about once a minute under load: ~150 ms each at 43,000
-- users, 0.4-0.75 ms of CPU per write at 100 writes/s (docs/performance.md). The planner reads nothing from those
-- statistics but the key's, so a partition is now analyzed after changes of twice its rows: a new one still after
-- its first rows, a full one once every two refreshes of all its users, twenty times less often than before.
--
-- pg_partman copies its template's storage parameters to every partition it makes (0030 hands it the native
-- partitions); the partitions already there get them here. Under TimescaleDB the hypertable's own parameters
-- go to its chunks.
DO $$
DECLARE
  child regclass;
BEGIN
  IF to_regclass('partman.template_public_forecast_daily') IS NOT NULL THEN
    ALTER TABLE partman.template_public_forecast_daily SET (autovacuum_analyze_scale_factor = 2);
  END IF;
  IF (SELECT relkind FROM pg_class WHERE oid = 'public.forecast_daily'::regclass) = 'r' THEN
    ALTER TABLE public.forecast_daily SET (autovacuum_analyze_scale_factor = 2);
  END IF;
  FOR child IN
    SELECT i.inhrelid::regclass FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'public.forecast_daily'::regclass AND c.relkind = 'r'
  LOOP
    EXECUTE format('ALTER TABLE %s SET (autovacuum_analyze_scale_factor = 2)', child);
  END LOOP;
END
$$;
