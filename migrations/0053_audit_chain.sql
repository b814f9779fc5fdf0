-- 0053: a tamper-evident audit log: every tenant's audit rows form a hash chain (docs/security.md).
--
-- Each row gets chain_seq (1, 2, 3, ... per tenant), prev_hash (the row_hash of the tenant's previous row, or
-- 64 zeros for the first) and row_hash = SHA-256 over the row's canonical JSON, which includes prev_hash, so
-- changing, deleting or reordering any row breaks every link after it. A BEFORE INSERT trigger computes them,
-- whoever inserts (the API, a worker, a tool): no writer can leave a row out of the chain. Appends of one
-- tenant serialise on a transaction-scoped advisory lock (the chain head must be committed before the next
-- row can name it); other tenants are not held up.
--
-- Canonical JSON (the verifier, tools/audit.py, rebuilds it from the columns): one object, keys in this
-- order (sorted), no whitespace, strings JSON-escaped, absent values null, `details` as PostgreSQL's jsonb text:
--   {"action":..,"actor_id":..,"actor_type":..,"chain_seq":N,"details":<jsonb text>,"entity_id":..,
--    "entity_type":..,"id":N,"occurred_at":"YYYY-MM-DDTHH:MM:SS.ffffffZ","prev_hash":..,"request_id":..,
--    "source_ip":..,"tenant_id":..,"trace_id":..}
--
-- Archival (tools/audit.py archive) removes a tenant's oldest rows only together with a checkpoint row that
-- keeps the last archived row's chain_seq and row_hash, so the rest of the chain stays verifiable; the
-- archived rows go to a JSON Lines file first, with their hashes, verifiable on its own.
ALTER TABLE audit_logs ADD COLUMN chain_seq bigint, ADD COLUMN prev_hash text, ADD COLUMN row_hash text;

CREATE TABLE audit_chain_checkpoints (
  tenant_id   text NOT NULL CHECK (tenant_id <> ''),
  chain_seq   bigint NOT NULL,
  row_hash    text NOT NULL,
  rows        bigint NOT NULL,
  archived_to text,
  archived_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, chain_seq)
);
ALTER TABLE audit_chain_checkpoints OWNER TO hashinsight_owner;

CREATE FUNCTION hashinsight_audit_canonical(a audit_logs) RETURNS text
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, public
AS $$
  SELECT '{"action":' || COALESCE(to_json(a.action)::text, 'null')
      || ',"actor_id":' || COALESCE(to_json(a.actor_id)::text, 'null')
      || ',"actor_type":' || COALESCE(to_json(a.actor_type)::text, 'null')
      || ',"chain_seq":' || COALESCE(a.chain_seq::text, 'null')
      || ',"details":' || COALESCE(a.details::text, 'null')
      || ',"entity_id":' || COALESCE(to_json(a.entity_id)::text, 'null')
      || ',"entity_type":' || COALESCE(to_json(a.entity_type)::text, 'null')
      || ',"id":' || COALESCE(a.id::text, 'null')
      || ',"occurred_at":' || COALESCE('"' || to_char(a.occurred_at AT TIME ZONE 'UTC',
                                                      'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '"', 'null')
      || ',"prev_hash":' || COALESCE(to_json(a.prev_hash)::text, 'null')
      || ',"request_id":' || COALESCE(to_json(a.request_id)::text, 'null')
      || ',"source_ip":' || COALESCE(to_json(a.source_ip)::text, 'null')
      || ',"tenant_id":' || COALESCE(to_json(a.tenant_id)::text, 'null')
      || ',"trace_id":' || COALESCE(to_json(a.trace_id)::text, 'null')
      || '}'
$$;

-- The chain head of a tenant: the newest row, else the newest checkpoint (everything was archived).
CREATE FUNCTION hashinsight_audit_link() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $fn$
DECLARE
  head_seq  bigint;
  head_hash text;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('hashinsight.audit_chain:' || NEW.tenant_id, 0));
  SELECT a.chain_seq, a.row_hash INTO head_seq, head_hash
    FROM public.audit_logs a WHERE a.tenant_id = NEW.tenant_id ORDER BY a.chain_seq DESC LIMIT 1;
  IF head_seq IS NULL THEN
    SELECT c.chain_seq, c.row_hash INTO head_seq, head_hash
      FROM public.audit_chain_checkpoints c WHERE c.tenant_id = NEW.tenant_id ORDER BY c.chain_seq DESC LIMIT 1;
  END IF;
  NEW.chain_seq := COALESCE(head_seq, 0) + 1;
  NEW.prev_hash := COALESCE(head_hash, repeat('0', 64));
  -- Microseconds are what the canonical form keeps; truncating here keeps the stored value equal to it.
  NEW.occurred_at := date_trunc('microseconds', NEW.occurred_at);
  NEW.row_hash := encode(sha256(convert_to(hashinsight_audit_canonical(NEW), 'UTF8')), 'hex');
  RETURN NEW;
END
$fn$;

-- Existing rows join the chain in id order (the append-only trigger is bypassed for this one backfill).
ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only;
DO $$
DECLARE
  r record;
  prev text;
  last_tenant text := NULL;
  seq bigint;
  row_ audit_logs;
BEGIN
  FOR r IN SELECT id, tenant_id FROM audit_logs ORDER BY tenant_id, id LOOP
    IF last_tenant IS DISTINCT FROM r.tenant_id THEN
      last_tenant := r.tenant_id; seq := 0; prev := repeat('0', 64);
    END IF;
    seq := seq + 1;
    UPDATE audit_logs SET chain_seq = seq, prev_hash = prev,
                          occurred_at = date_trunc('microseconds', occurred_at)
     WHERE id = r.id RETURNING * INTO row_;
    prev := encode(sha256(convert_to(hashinsight_audit_canonical(row_), 'UTF8')), 'hex');
    UPDATE audit_logs SET row_hash = prev WHERE id = r.id;
  END LOOP;
END
$$;
ALTER TABLE audit_logs ENABLE TRIGGER audit_logs_append_only;

ALTER TABLE audit_logs ALTER COLUMN chain_seq SET NOT NULL, ALTER COLUMN prev_hash SET NOT NULL,
                       ALTER COLUMN row_hash SET NOT NULL;
CREATE UNIQUE INDEX audit_logs_chain_idx ON audit_logs (tenant_id, chain_seq);

CREATE TRIGGER audit_logs_link BEFORE INSERT ON audit_logs
  FOR EACH ROW EXECUTE FUNCTION hashinsight_audit_link();

-- Archival: delete a tenant's rows up to a chain position, leaving a checkpoint, in one transaction. The
-- append-only trigger lets a DELETE through only while this function has set its transaction-local flag.
CREATE OR REPLACE FUNCTION hashinsight_audit_logs_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('hashinsight.audit_archiving', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit_logs is append-only (% refused)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;

-- Not SECURITY DEFINER: only the archive tool calls it, as the database administrator.
CREATE FUNCTION hashinsight_audit_archive(tenant text, up_to_seq bigint, archived_to text) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $fn$
DECLARE
  last_hash text;
  gone bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('hashinsight.audit_chain:' || tenant, 0));
  SELECT row_hash INTO last_hash FROM public.audit_logs WHERE tenant_id = tenant AND chain_seq = up_to_seq;
  IF last_hash IS NULL THEN
    RAISE EXCEPTION 'tenant % has no audit row at chain position %', tenant, up_to_seq;
  END IF;
  PERFORM set_config('hashinsight.audit_archiving', 'on', true);
  DELETE FROM public.audit_logs WHERE tenant_id = tenant AND chain_seq <= up_to_seq;
  GET DIAGNOSTICS gone = ROW_COUNT;
  PERFORM set_config('hashinsight.audit_archiving', 'off', true);
  INSERT INTO public.audit_chain_checkpoints (tenant_id, chain_seq, row_hash, rows, archived_to)
  VALUES (tenant, up_to_seq, last_hash, gone, archived_to);
  RETURN gone;
END
$fn$;

ALTER FUNCTION hashinsight_audit_canonical(audit_logs) OWNER TO hashinsight_owner;
ALTER FUNCTION hashinsight_audit_link() OWNER TO hashinsight_ops;
GRANT SELECT (tenant_id, chain_seq, row_hash) ON audit_logs TO hashinsight_ops;
GRANT SELECT (tenant_id, chain_seq, row_hash) ON audit_chain_checkpoints TO hashinsight_ops;
GRANT EXECUTE ON FUNCTION hashinsight_audit_canonical(audit_logs) TO hashinsight_ops;
REVOKE ALL ON FUNCTION hashinsight_audit_link() FROM PUBLIC;
REVOKE ALL ON FUNCTION hashinsight_audit_archive(text, bigint, text) FROM PUBLIC;
