-- 0004: the transactional outbox Debezium captures, and the consumers' inbox.
SET LOCAL ROLE hashinsight_owner;

-- Exactly the brief's table, plus tenant_id, trace_id and processed_at (added at the end so the
-- brief's columns keep their order). Replica identity stays DEFAULT (the primary key).
-- The service layer must derive idempotency_key so it cannot collide across tenants (the constraint is
-- global, as the brief specifies): e.g. '<tenant_id>:<user_id>:<Idempotency-Key header>:<kind>'.
-- How `processed` becomes true (and when old rows are purged) is decided in a later issue; the worker
-- role may already set processed/processed_at.
CREATE TABLE event_outbox(
  id text PRIMARY KEY, kind text NOT NULL, user_id text NOT NULL, entity_id text,
  payload jsonb NOT NULL, idempotency_key text UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(), processed boolean NOT NULL DEFAULT false,
  tenant_id text NOT NULL CHECK (tenant_id <> ''),
  trace_id text,
  processed_at timestamptz,
  -- <domain>.<event>: the connector routes on the domain (events.<domain>), so reject anything else here.
  CONSTRAINT event_outbox_kind_shape CHECK (kind ~ '^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$'));
CREATE INDEX ON event_outbox (processed, created_at);
CREATE INDEX ON event_outbox (user_id, created_at);

-- Idempotent consumers: the mark is written in the same transaction as the effect, and a duplicate-key
-- insert on (consumer_name, event_id) means "seen" (INSERT ... ON CONFLICT DO NOTHING returns no row).
CREATE TABLE consumer_inbox (
  consumer_name text NOT NULL,
  event_id      text NOT NULL,
  tenant_id     text NOT NULL CHECK (tenant_id <> ''),
  kind          text,
  user_id       text,
  processed_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_name, event_id)
);
CREATE INDEX consumer_inbox_processed_at_idx ON consumer_inbox (consumer_name, processed_at);

RESET ROLE;

-- The publication Debezium uses (publication.autocreate.mode=disabled, publication.name=hashinsight_outbox):
-- event_outbox and nothing else, inserts only. Updates (processed flips) and deletes (purges) of outbox
-- rows are bookkeeping, not events, so they must never reach Kafka.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'hashinsight_outbox') THEN
    CREATE PUBLICATION hashinsight_outbox FOR TABLE public.event_outbox WITH (publish = 'insert');
  ELSE
    ALTER PUBLICATION hashinsight_outbox SET TABLE public.event_outbox;
    ALTER PUBLICATION hashinsight_outbox SET (publish = 'insert');
  END IF;
END
$$;

-- The one cross-tenant read the API needs (/api/health outbox_backlog). Owned by hashinsight_ops, whose
-- BYPASSRLS is confined to this aggregate: callers get two numbers, never a row.
CREATE FUNCTION hashinsight_outbox_stats(OUT backlog bigint, OUT oldest_unprocessed_at timestamptz)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
  SELECT count(*), min(created_at) FROM public.event_outbox WHERE NOT processed
$$;
GRANT SELECT ON event_outbox TO hashinsight_ops;
ALTER FUNCTION hashinsight_outbox_stats() OWNER TO hashinsight_ops;
REVOKE ALL ON FUNCTION hashinsight_outbox_stats() FROM PUBLIC;
