-- 0057: the audit chain's canonical form is planned once per connection, not once per transaction.
--
-- The linking trigger (0053) hashes hashinsight_audit_canonical(NEW) for every audit row, and every API write
-- adds one. As declared there, IMMUTABLE over STABLE functions (to_json, to_char) and with its own search_path,
-- the function could not be inlined: each transaction parsed, analyzed and planned its body anew. An audit insert
-- took 0.28 ms of PostgreSQL's time, 0.16 ms with this (docs/performance.md). Declared STABLE, which
-- is what it is, and with a SQL-standard body, whose names are bound here when it is created and so need no
-- search_path of their own, the planner inlines it into the trigger's expression, and PL/pgSQL keeps that plan
-- for the connection's life.
--
-- The body is the same expression, so the canonical text, and every hash in the chain, is unchanged.
CREATE OR REPLACE FUNCTION hashinsight_audit_canonical(a audit_logs) RETURNS text
LANGUAGE sql
STABLE
BEGIN ATOMIC
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
      || '}';
END;
