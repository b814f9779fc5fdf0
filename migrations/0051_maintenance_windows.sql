-- 0051: maintenance windows (POST /api/ops/maintenance, GET /api/ops/schedule, events.ops).
--
-- One row per planned window of one miner. Windows of one miner never overlap: an exclusion constraint on
-- (tenant, miner, [starts_at, ends_at)) refuses the second of two overlapping windows even when two requests
-- race (the API answers 409). btree_gist gives GiST the equality operators on text and uuid it needs; it is a
-- trusted contrib extension shipped with PostgreSQL.
CREATE EXTENSION IF NOT EXISTS btree_gist;

SET LOCAL ROLE hashinsight_owner;

CREATE TABLE maintenance_windows (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id  text NOT NULL CHECK (tenant_id <> ''),
  user_id    text NOT NULL,
  miner_id   uuid NOT NULL,
  starts_at  timestamptz NOT NULL,
  ends_at    timestamptz NOT NULL,
  reason     text,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT maintenance_windows_order_check CHECK (ends_at > starts_at),
  CONSTRAINT maintenance_windows_no_overlap
    EXCLUDE USING gist (tenant_id WITH =, miner_id WITH =, tstzrange(starts_at, ends_at) WITH &&),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, miner_id) REFERENCES miners (tenant_id, id) ON DELETE CASCADE
);
-- The schedule of a user's day, and the forecast's downtime of a user's fleet from today on.
CREATE INDEX maintenance_windows_user_idx ON maintenance_windows (tenant_id, user_id, ends_at, starts_at);

RESET ROLE;

SELECT hashinsight_secure_tenant_table('maintenance_windows');
GRANT SELECT, INSERT ON maintenance_windows TO hashinsight_api;
GRANT SELECT ON maintenance_windows TO hashinsight_worker;
