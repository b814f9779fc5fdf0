-- 0030: partitions and retention from well-kept tools: pg_partman makes the daily partitions ahead and drops
-- them past retention, pg_cron runs that and the purges of the bounded tables.
--
-- Before: daily partitions were created only when `make migrate` ran (45 days ahead), so 45 days after the last
-- migrate rows fell into DEFAULT, and nothing dropped old partitions or purged consumer_inbox.
--
-- Three paths, by what the server has:
-- * TimescaleDB (the compose image): chunks are Timescale's own; add_retention_policy drops old ones and a
--   Timescale job runs hashinsight_purge_expired() every minute. No pg_partman, no pg_cron.
-- * Native daily partitions (the native stack, and every database of the test suite): pg_partman manages the
--   three tables; the 0003 partitions are renamed to its naming (<table>_pYYYY_MM_DD) and adopted.
-- * pg_cron, where this database is the one pg_cron serves (cron.database_name, the stack's `hashinsight`):
--   the jobs below. Elsewhere (the suite's throwaway databases) nothing is scheduled and the same functions are
--   called by hand or by the tests.
--
-- Retention (docs/operations.md, "Retention"): hashinsight_retention holds the purge windows, so an operator
-- changes one with an UPDATE, no redeploy; partman.part_config holds the partition retention.

CREATE TABLE hashinsight_retention (
  name       text PRIMARY KEY,
  keep       interval NOT NULL CHECK (keep > interval '0'),
  batch_rows integer NOT NULL DEFAULT 10000 CHECK (batch_rows > 0),
  why        text NOT NULL
);
INSERT INTO hashinsight_retention (name, keep, batch_rows, why) VALUES
  ('event_outbox', interval '72 hours', 10000,
   'processed outbox rows; Kafka keeps the events themselves for 7 days'),
  ('idempotency_keys', interval '24 hours', 10000,
   'answered Idempotency-Keys; the API treats older keys as new whether or not they are purged'),
  ('consumer_inbox', interval '14 days', 50000,
   'inbox marks; must outlive the longest replay window (Kafka retention of events.*: 7 days), or a replay '
   'or a redelivery of an older event would apply it twice');
ALTER TABLE hashinsight_retention OWNER TO hashinsight_owner;
GRANT SELECT ON hashinsight_retention TO hashinsight_ops;

-- The inbox purge, cross-tenant, in the shape of 0007/0010: an age in, a count out.
GRANT SELECT, DELETE ON consumer_inbox TO hashinsight_ops;
CREATE INDEX consumer_inbox_processed_at_all_idx ON consumer_inbox (processed_at);

CREATE FUNCTION hashinsight_purge_consumer_inbox(retention interval, max_rows integer DEFAULT 50000)
RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
  WITH doomed AS (
    SELECT consumer_name, event_id FROM public.consumer_inbox
     WHERE processed_at < now() - retention
     ORDER BY processed_at
     LIMIT max_rows),
  gone AS (
    DELETE FROM public.consumer_inbox i USING doomed
     WHERE (i.consumer_name, i.event_id) = (doomed.consumer_name, doomed.event_id)
    RETURNING 1)
  SELECT count(*)::integer FROM gone
$$;
ALTER FUNCTION hashinsight_purge_consumer_inbox(interval, integer) OWNER TO hashinsight_ops;
REVOKE ALL ON FUNCTION hashinsight_purge_consumer_inbox(interval, integer) FROM PUBLIC;

-- Every purge, each with its window and batch from hashinsight_retention; what the scheduler runs every minute.
-- Returns the rows deleted per table.
CREATE FUNCTION hashinsight_purge_expired(OUT name text, OUT purged integer)
RETURNS SETOF record
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $fn$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT * FROM public.hashinsight_retention ORDER BY 1 LOOP
    name := r.name;
    purged := CASE r.name
      WHEN 'event_outbox' THEN public.hashinsight_purge_outbox(r.keep, r.batch_rows)
      WHEN 'idempotency_keys' THEN public.hashinsight_purge_idempotency_keys(r.keep, r.batch_rows)
      WHEN 'consumer_inbox' THEN public.hashinsight_purge_consumer_inbox(r.keep, r.batch_rows)
    END;
    RETURN NEXT;
  END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION hashinsight_purge_expired() FROM PUBLIC;

-- ------------------------------------------------------------------------------------------------ partitions

DO $$
DECLARE
  timescale constant boolean := EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb');
BEGIN
  IF timescale THEN
    PERFORM add_retention_policy('network_snapshots', interval '365 days');
    PERFORM add_retention_policy('miner_telemetry', interval '120 days');
    PERFORM add_retention_policy('forecast_daily', interval '30 days');
    RETURN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_partman') THEN
    RAISE EXCEPTION 'pg_partman is not installed (Debian: postgresql-15-partman; infra/stack.sh installs it)';
  END IF;
  CREATE SCHEMA IF NOT EXISTS partman;
  CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman;
END
$$;

-- Maintenance as the owner of the tables, so the partitions pg_partman creates belong to hashinsight_owner like
-- every other table (a superuser scheduler would otherwise own them). UTC days whatever the caller's TimeZone.
CREATE FUNCTION hashinsight_partition_maintenance() RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
SET TimeZone = 'UTC'
AS $fn$
BEGIN
  IF to_regnamespace('partman') IS NULL THEN
    RETURN;  -- TimescaleDB: chunks and their retention are Timescale's
  END IF;
  PERFORM partman.run_maintenance(p_analyze => false, p_jobmon => false);
END
$fn$;
ALTER FUNCTION hashinsight_partition_maintenance() OWNER TO hashinsight_owner;
REVOKE ALL ON FUNCTION hashinsight_partition_maintenance() FROM PUBLIC;

-- The window function the seed and `make migrate` call, now through pg_partman: it creates the missing daily
-- partitions of [today - days_back, today + days_ahead] with pg_partman's names, after moving rows that sit in
-- DEFAULT into partitions of their own (creating a partition over them would fail). Returns how many it created.
CREATE OR REPLACE FUNCTION hashinsight_ensure_partitions(days_back integer DEFAULT 7, days_ahead integer DEFAULT 45)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
SET TimeZone = 'UTC'
AS $fn$
DECLARE
  today   constant date := (now() AT TIME ZONE 'UTC')::date;
  parent  text;
  before  integer;
  after   integer;
  pending boolean;
  missing timestamptz[];
  keep    interval;
  created integer := 0;
BEGIN
  IF days_back < 0 OR days_ahead < 0 OR days_back + days_ahead > 3660 THEN
    RAISE EXCEPTION 'hashinsight_ensure_partitions: bad window (% back, % ahead)', days_back, days_ahead;
  END IF;
  IF to_regnamespace('partman') IS NULL THEN
    RETURN 0;  -- TimescaleDB makes its own chunks
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('hashinsight_ensure_partitions'));
  FOREACH parent IN ARRAY ARRAY['network_snapshots', 'miner_telemetry', 'forecast_daily'] LOOP
    SELECT count(*) INTO before FROM pg_inherits WHERE inhparent = ('public.' || parent)::regclass;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM public.%I)', parent || '_default') INTO pending;
    IF pending THEN
      PERFORM partman.partition_data_time('public.' || parent, p_batch_count => 1000, p_analyze => false);
    END IF;
    -- Only the days whose partition is missing: pg_partman checks each day it is given, which costs.
    -- Never a day pg_partman would drop again at its next run (forecast_daily keeps only 30 days back).
    SELECT retention::interval INTO keep FROM partman.part_config WHERE parent_table = 'public.' || parent;
    missing := ARRAY(
      SELECT d::timestamptz FROM generate_series(today - days_back, today + days_ahead, interval '1 day') d
       WHERE to_regclass('public.' || parent || '_p' || to_char(d, 'YYYY_MM_DD')) IS NULL
         AND (keep IS NULL OR d >= today - keep));
    IF cardinality(missing) > 0 THEN
      PERFORM partman.create_partition_time('public.' || parent, missing, false);
    END IF;
    SELECT count(*) INTO after FROM pg_inherits WHERE inhparent = ('public.' || parent)::regclass;
    created := created + (after - before);
  END LOOP;
  RETURN created;
END
$fn$;
ALTER FUNCTION hashinsight_ensure_partitions(integer, integer) OWNER TO hashinsight_owner;
REVOKE ALL ON FUNCTION hashinsight_ensure_partitions(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hashinsight_ensure_partitions(integer, integer) TO hashinsight_worker;

-- Hand the native tables to pg_partman: 0003's partitions take its names, the DEFAULT partition is set aside
-- while create_parent makes its own, and its rows (normally none) go back through the parent.
DO $$
DECLARE
  spec   record;
  child  record;
  oldest date;
  moved  text;
BEGIN
  IF to_regnamespace('partman') IS NULL THEN
    RETURN;
  END IF;
  -- pg_partman works as the owner (SECURITY DEFINER functions above); it needs its own schema and tables.
  GRANT USAGE ON SCHEMA partman TO hashinsight_owner;
  GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA partman TO hashinsight_owner;
  GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA partman TO hashinsight_owner;
  GRANT CREATE ON SCHEMA partman TO hashinsight_owner;  -- its template tables
  -- partition_data_time stages the rows it moves out of DEFAULT in a temporary table.
  EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO hashinsight_owner', current_database());
  SET LOCAL TimeZone = 'UTC';
  FOR spec IN
    SELECT * FROM (VALUES ('network_snapshots', 'ts', interval '365 days'),
                          ('miner_telemetry', 'ts', interval '120 days'),
                          ('forecast_daily', 'day', interval '30 days')) AS v (parent, col, keep)
  LOOP
    oldest := NULL;
    FOR child IN
      SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = ('public.' || spec.parent)::regclass AND c.relname ~ ('^' || spec.parent || '_p\d{8}$')
    LOOP
      EXECUTE format('ALTER TABLE public.%I RENAME TO %I', child.relname,
                     spec.parent || '_p' || to_char(to_date(right(child.relname, 8), 'YYYYMMDD'), 'YYYY_MM_DD'));
      oldest := least(oldest, to_date(right(child.relname, 8), 'YYYYMMDD'));
    END LOOP;
    moved := spec.parent || '_default_0030';
    EXECUTE format('ALTER TABLE public.%I DETACH PARTITION public.%I', spec.parent, spec.parent || '_default');
    EXECUTE format('ALTER TABLE public.%I RENAME TO %I', spec.parent || '_default', moved);
    SET LOCAL ROLE hashinsight_owner;
    PERFORM partman.create_parent(
      p_parent_table => 'public.' || spec.parent, p_control => spec.col, p_type => 'native', p_interval => 'daily',
      p_premake => 45, p_start_partition => coalesce(oldest, current_date)::text, p_jobmon => false);
    -- create_parent makes the DEFAULT partition only when it created a child itself; with every child adopted
    -- it stops before that step.
    IF to_regclass('public.' || spec.parent || '_default') IS NULL THEN
      EXECUTE format('CREATE TABLE public.%I PARTITION OF public.%I DEFAULT', spec.parent || '_default', spec.parent);
    END IF;
    RESET ROLE;
    UPDATE partman.part_config
       SET retention = spec.keep::text, retention_keep_table = false, retention_keep_index = false,
           infinite_time_partitions = true
     WHERE parent_table = 'public.' || spec.parent;
    EXECUTE format('INSERT INTO public.%I SELECT * FROM public.%I', spec.parent, moved);
    EXECUTE format('DROP TABLE public.%I', moved);
  END LOOP;
  -- The partitions pg_partman adds later get no grants (inherit_privileges stays false): RLS lives on the
  -- parents, so nobody but the owner may read a partition directly, as before.
END
$$;

-- ------------------------------------------------------------------------------------------------ scheduling

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
    -- Timescale's job scheduler (the compose image has no pg_cron).
    EXECUTE $job$
      CREATE PROCEDURE hashinsight_purge_expired_job(job_id integer, config jsonb)
      LANGUAGE plpgsql AS $p$ BEGIN PERFORM public.hashinsight_purge_expired(); END $p$
    $job$;
    PERFORM add_job('hashinsight_purge_expired_job', interval '1 minute');
    RETURN;
  END IF;
  IF current_setting('cron.database_name', true) IS DISTINCT FROM current_database()
     OR NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_cron') THEN
    RAISE NOTICE 'pg_cron does not serve database % (cron.database_name is %): nothing scheduled here',
      current_database(), coalesce(current_setting('cron.database_name', true), 'unset');
    RETURN;
  END IF;
  CREATE EXTENSION IF NOT EXISTS pg_cron;
  PERFORM cron.schedule('hashinsight-purge-expired', '* * * * *', 'SELECT count(*) FROM hashinsight_purge_expired()');
  PERFORM cron.schedule('hashinsight-partitions', '7 * * * *', 'SELECT hashinsight_partition_maintenance()');
END
$$;

-- Keep the partitions ahead at once, not only at the first hourly run.
SELECT hashinsight_partition_maintenance();
