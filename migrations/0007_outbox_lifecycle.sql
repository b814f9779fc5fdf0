-- 0007: the outbox lifecycle under CDC.
--
-- `processed` means "captured and delivered": the event was read back from Kafka by the bus's designated
-- consumer (the portfolio worker reads every events.* topic and marks each event it reads, whether or not it
-- acts on it). outbox_backlog = rows not yet processed = what is written but not yet through
-- Debezium -> Kafka -> consumer; it grows when the connector, Kafka or the consumer stalls.
-- Processed rows leave the table after a retention window (OUTBOX_RETENTION_HOURS, default 72 h), in batches,
-- so the table stays bounded; Kafka keeps the events themselves (7 days) for replay.
-- Both run across tenants, so both are SECURITY DEFINER functions owned by hashinsight_ops (BYPASSRLS) that
-- take ids or an age and return counts: the worker role never reads another tenant's rows.
-- The publication publishes inserts only (0004), so these updates and deletes never reach Kafka.

GRANT UPDATE (processed, processed_at), DELETE ON event_outbox TO hashinsight_ops;

CREATE FUNCTION hashinsight_mark_outbox_processed(event_ids text[]) RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
  WITH marked AS (
    UPDATE public.event_outbox SET processed = true, processed_at = now()
     WHERE id = ANY(event_ids) AND NOT processed
    RETURNING 1)
  SELECT count(*)::integer FROM marked
$$;

CREATE FUNCTION hashinsight_purge_outbox(retention interval, max_rows integer DEFAULT 10000) RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
  WITH doomed AS (
    SELECT id FROM public.event_outbox
     WHERE processed AND processed_at < now() - retention
     ORDER BY processed_at
     LIMIT max_rows),
  gone AS (DELETE FROM public.event_outbox o USING doomed WHERE o.id = doomed.id RETURNING 1)
  SELECT count(*)::integer FROM gone
$$;

ALTER FUNCTION hashinsight_mark_outbox_processed(text[]) OWNER TO hashinsight_ops;
ALTER FUNCTION hashinsight_purge_outbox(interval, integer) OWNER TO hashinsight_ops;
REVOKE ALL ON FUNCTION hashinsight_mark_outbox_processed(text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION hashinsight_purge_outbox(interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hashinsight_mark_outbox_processed(text[]) TO hashinsight_worker;
GRANT EXECUTE ON FUNCTION hashinsight_purge_outbox(interval, integer) TO hashinsight_worker;

-- The purge walks processed rows by age.
CREATE INDEX event_outbox_processed_at_idx ON event_outbox (processed_at) WHERE processed;
