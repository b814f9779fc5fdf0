-- 0011: the latest network snapshot, one row, kept by trigger.
--
-- Every recalculation prices a fleet with the newest network_snapshots row. On the daily-partitioned table
-- "ORDER BY ts DESC LIMIT 1" is planned over every partition (a bound on now() is only pruned at execution),
-- which cost ~15 ms of planning per call with ~170 partitions: more than the rest of a recalculation. This
-- single-row table is a primary-key read instead. Triggers keep it equal to the newest snapshot whatever
-- writes the table (the seed, the market-data API, a hand-made insert): an insert or update of a newer row
-- replaces it; deleting or back-dating the current one recomputes it from the table.
SET LOCAL ROLE hashinsight_owner;

CREATE TABLE network_latest (
  singleton            boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  ts                   timestamptz NOT NULL,
  btc_price_usd        double precision NOT NULL,
  difficulty           double precision NOT NULL,
  network_hashrate_ehs double precision NOT NULL,
  block_reward_btc     double precision NOT NULL,
  source               text NOT NULL
);

CREATE FUNCTION hashinsight_network_latest_recompute() RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
  DELETE FROM public.network_latest;
  INSERT INTO public.network_latest (ts, btc_price_usd, difficulty, network_hashrate_ehs, block_reward_btc, source)
  SELECT ts, btc_price_usd, difficulty, network_hashrate_ehs, block_reward_btc, source
    FROM public.network_snapshots ORDER BY ts DESC LIMIT 1;
$$;

CREATE FUNCTION hashinsight_network_latest_track() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $fn$
DECLARE
  current_ts timestamptz := (SELECT ts FROM public.network_latest);
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.ts = current_ts
     AND (TG_OP = 'DELETE' OR NEW.ts < OLD.ts) THEN
    PERFORM hashinsight_network_latest_recompute();
    RETURN NULL;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND (current_ts IS NULL OR NEW.ts >= current_ts) THEN
    INSERT INTO public.network_latest AS l
           (ts, btc_price_usd, difficulty, network_hashrate_ehs, block_reward_btc, source)
    VALUES (NEW.ts, NEW.btc_price_usd, NEW.difficulty, NEW.network_hashrate_ehs, NEW.block_reward_btc, NEW.source)
    ON CONFLICT (singleton) DO UPDATE SET
      ts = EXCLUDED.ts, btc_price_usd = EXCLUDED.btc_price_usd, difficulty = EXCLUDED.difficulty,
      network_hashrate_ehs = EXCLUDED.network_hashrate_ehs, block_reward_btc = EXCLUDED.block_reward_btc,
      source = EXCLUDED.source;
  END IF;
  RETURN NULL;
END
$fn$;

-- Row triggers on the partitioned parent (or hypertable) apply to every partition, present and future.
CREATE TRIGGER network_latest_track
  AFTER INSERT OR UPDATE OR DELETE ON network_snapshots
  FOR EACH ROW EXECUTE FUNCTION hashinsight_network_latest_track();

RESET ROLE;

REVOKE ALL ON FUNCTION hashinsight_network_latest_recompute() FROM PUBLIC;
REVOKE ALL ON FUNCTION hashinsight_network_latest_track() FROM PUBLIC;
GRANT SELECT ON network_latest TO hashinsight_api, hashinsight_worker;

SELECT hashinsight_network_latest_recompute();
