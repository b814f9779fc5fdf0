-- 0055: pg_stat_statements, where the server preloads its library (the native stack does: infra/stack.sh).
-- The runbook's first look at a slow operation (docs/operations.md, ApiSlow) and the benchmark's method
-- (docs/performance.md) read the view; without the extension it does not exist, even with the library loaded.
-- Creating it needs a superuser, as the migration runner is; where the library is not preloaded (a managed
-- server that offers it otherwise) nothing is done, since CREATE EXTENSION would succeed but the view would fail.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements')
     AND current_setting('shared_preload_libraries', true) LIKE '%pg_stat_statements%' THEN
    CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
  ELSE
    RAISE NOTICE 'pg_stat_statements is not preloaded here: the extension is not created';
  END IF;
END
$$;
