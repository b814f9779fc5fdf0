-- 0003: time series, partitioned by day.
--
-- Where TimescaleDB is installed and preloaded (the docker compose image), network_snapshots,
-- miner_telemetry and forecast_daily become hypertables with 1-day chunks. Where it is not (the native
-- stack), they are declaratively range-partitioned by day, with a DEFAULT partition so an out-of-range row
-- is never lost, and hashinsight_ensure_partitions() creates the daily partitions around today.
-- One migration, both paths: the DDL is the same but for the PARTITION BY clause.
-- Primary keys include the time column, as both partitioning schemes require.

-- Creating the extension needs a superuser, so it happens before switching to the owner role.
-- pg_available_extensions alone is not enough: CREATE EXTENSION fails unless the library is preloaded.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
     AND current_setting('shared_preload_libraries', true) LIKE '%timescaledb%' THEN
    CREATE EXTENSION IF NOT EXISTS timescaledb;
  END IF;
END
$$;

SET LOCAL ROLE hashinsight_owner;

DO $$
DECLARE
  timescale constant boolean := EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb');
BEGIN
  -- Global market data (no tenant), one row per sample.
  EXECUTE $ddl$
    CREATE TABLE network_snapshots (
      ts                   timestamptz NOT NULL,
      btc_price_usd        double precision NOT NULL CHECK (btc_price_usd > 0),
      difficulty           double precision NOT NULL CHECK (difficulty > 0),
      network_hashrate_ehs double precision NOT NULL CHECK (network_hashrate_ehs > 0),
      block_reward_btc     double precision NOT NULL CHECK (block_reward_btc > 0),
      source               text NOT NULL DEFAULT 'manual',
      PRIMARY KEY (ts)
    )$ddl$ || CASE WHEN timescale THEN '' ELSE ' PARTITION BY RANGE (ts)' END;

  -- No foreign key to miners: telemetry is bulk time-series data and outlives a miner row.
  EXECUTE $ddl$
    CREATE TABLE miner_telemetry (
      tenant_id     text NOT NULL CHECK (tenant_id <> ''),
      miner_id      uuid NOT NULL,
      ts            timestamptz NOT NULL,
      hashrate_ths  double precision NOT NULL CHECK (hashrate_ths >= 0),
      power_w       double precision NOT NULL CHECK (power_w >= 0),
      temperature_c double precision,
      PRIMARY KEY (tenant_id, miner_id, ts)
    )$ddl$ || CASE WHEN timescale THEN '' ELSE ' PARTITION BY RANGE (ts)' END;

  -- One row per user per future day, written by the intel consumer.
  EXECUTE $ddl$
    CREATE TABLE forecast_daily (
      tenant_id     text NOT NULL CHECK (tenant_id <> ''),
      user_id       text NOT NULL,
      day           date NOT NULL,
      btc_mined     double precision NOT NULL DEFAULT 0,
      revenue_usd   double precision NOT NULL DEFAULT 0,
      cost_usd      double precision NOT NULL DEFAULT 0,
      profit_usd    double precision NOT NULL DEFAULT 0,
      btc_price_usd double precision,
      difficulty    double precision,
      computed_at   timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, user_id, day),
      FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
    )$ddl$ || CASE WHEN timescale THEN '' ELSE ' PARTITION BY RANGE (day)' END;

  IF timescale THEN
    PERFORM create_hypertable('network_snapshots', 'ts', chunk_time_interval => interval '1 day');
    PERFORM create_hypertable('miner_telemetry', 'ts', chunk_time_interval => interval '1 day');
    PERFORM create_hypertable('forecast_daily', 'day', chunk_time_interval => interval '1 day');
  ELSE
    CREATE TABLE network_snapshots_default PARTITION OF network_snapshots DEFAULT;
    CREATE TABLE miner_telemetry_default PARTITION OF miner_telemetry DEFAULT;
    CREATE TABLE forecast_daily_default PARTITION OF forecast_daily DEFAULT;
  END IF;
END
$$;

-- Creates the missing daily partitions from today - days_back to today + days_ahead (UTC days) for the
-- three tables, and returns how many it created. A no-op for hypertables (Timescale makes its own chunks).
-- If rows for a day already sit in the DEFAULT partition, they are moved into the new partition (attaching
-- over them would fail). SECURITY DEFINER so the partitions are owned by hashinsight_owner whoever calls it;
-- `make migrate`, the seed and (via its EXECUTE grant) the worker role call it.
CREATE FUNCTION hashinsight_ensure_partitions(days_back integer DEFAULT 7, days_ahead integer DEFAULT 45)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $fn$
DECLARE
  today   constant date := (now() AT TIME ZONE 'UTC')::date;
  spec    record;
  d       date;
  part    text;
  dflt    text;
  lo      text;
  hi      text;
  pending boolean;
  created integer := 0;
BEGIN
  IF days_back < 0 OR days_ahead < 0 OR days_back + days_ahead > 3660 THEN
    RAISE EXCEPTION 'hashinsight_ensure_partitions: bad window (% back, % ahead)', days_back, days_ahead;
  END IF;
  -- Two callers at once (migrate and seed) would both try to create the same table.
  PERFORM pg_advisory_xact_lock(hashtext('hashinsight_ensure_partitions'));

  FOR spec IN
    SELECT * FROM (VALUES ('network_snapshots', 'ts', false),
                          ('miner_telemetry', 'ts', false),
                          ('forecast_daily', 'day', true)) AS v (parent, col, is_date)
  LOOP
    CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_class
                              WHERE oid = to_regclass('public.' || spec.parent) AND relkind = 'p');
    dflt := spec.parent || '_default';
    FOR i IN -days_back .. days_ahead LOOP
      d := today + i;
      part := spec.parent || '_p' || to_char(d, 'YYYYMMDD');
      CONTINUE WHEN to_regclass('public.' || part) IS NOT NULL;
      -- Explicit +00 offsets: the bounds are UTC midnights whatever the session's TimeZone.
      IF spec.is_date THEN
        lo := to_char(d, 'YYYY-MM-DD');
        hi := to_char(d + 1, 'YYYY-MM-DD');
      ELSE
        lo := to_char(d, 'YYYY-MM-DD') || ' 00:00:00+00';
        hi := to_char(d + 1, 'YYYY-MM-DD') || ' 00:00:00+00';
      END IF;
      EXECUTE format('SELECT EXISTS (SELECT 1 FROM public.%I WHERE %I >= %L AND %I < %L)',
                     dflt, spec.col, lo, spec.col, hi) INTO pending;
      IF pending THEN
        EXECUTE format('CREATE TABLE public.%I (LIKE public.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       part, spec.parent);
        EXECUTE format('WITH moved AS (DELETE FROM public.%I WHERE %I >= %L AND %I < %L RETURNING *) '
                       'INSERT INTO public.%I SELECT * FROM moved',
                       dflt, spec.col, lo, spec.col, hi, part);
        EXECUTE format('ALTER TABLE public.%I ATTACH PARTITION public.%I FOR VALUES FROM (%L) TO (%L)',
                       spec.parent, part, lo, hi);
      ELSE
        EXECUTE format('CREATE TABLE public.%I PARTITION OF public.%I FOR VALUES FROM (%L) TO (%L)',
                       part, spec.parent, lo, hi);
      END IF;
      created := created + 1;
    END LOOP;
  END LOOP;
  RETURN created;
END
$fn$;
REVOKE ALL ON FUNCTION hashinsight_ensure_partitions(integer, integer) FROM PUBLIC;

-- The window the seed (90 days back) and the forecast (30+ days ahead) need; `make migrate` re-runs this
-- every time, so the window moves forward with the calendar.
SELECT hashinsight_ensure_partitions(120, 45);
