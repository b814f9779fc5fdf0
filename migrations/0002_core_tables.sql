-- 0002: reference data and the tenant-owned business tables (names from docs/domain.md).
--
-- Everything is created as hashinsight_owner so that no application role owns a table (owners could
-- otherwise disable Row-Level Security). RLS and grants are in 0005, in one place.
SET LOCAL ROLE hashinsight_owner;

-- Trigger helper: keep updated_at honest whatever the caller sends.
CREATE FUNCTION hashinsight_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END
$$;

------------------------------------------------------------------------------------------------------
-- Global reference data: no tenant_id, readable by the application roles, writable only by migrations
-- and the seed.
------------------------------------------------------------------------------------------------------
CREATE TABLE roles (
  id          text PRIMARY KEY,                  -- slug: viewer, operator, trader, admin
  name        text NOT NULL,
  description text NOT NULL DEFAULT ''
);

CREATE TABLE permissions (
  id          text PRIMARY KEY,                  -- a scope string such as miners:write
  description text NOT NULL DEFAULT '',
  CONSTRAINT permissions_scope_shape CHECK (id ~ '^[a-z]+:[a-z]+$')
);

CREATE TABLE role_permissions (
  role_id       text NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
  permission_id text NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
  PRIMARY KEY (role_id, permission_id)
);

-- Plan catalogue: the default limits of each plan (a user without a user_subscriptions row is on free).
CREATE TABLE subscription_plans (
  plan                text PRIMARY KEY,
  requests_per_minute integer NOT NULL CHECK (requests_per_minute > 0),
  burst               integer NOT NULL CHECK (burst > 0),
  description         text NOT NULL DEFAULT '',
  CONSTRAINT subscription_plans_plan_check CHECK (plan IN ('free', 'pro', 'enterprise'))
);

CREATE TABLE miner_models (
  id             text PRIMARY KEY,               -- slug such as antminer-s21
  manufacturer   text NOT NULL,
  name           text NOT NULL,
  hashrate_ths   double precision NOT NULL CHECK (hashrate_ths > 0),
  power_w        double precision NOT NULL CHECK (power_w > 0),
  release_year   integer NOT NULL CHECK (release_year BETWEEN 2009 AND 2100),
  algorithm      text NOT NULL DEFAULT 'SHA-256',
  efficiency_j_th double precision GENERATED ALWAYS AS (power_w / hashrate_ths) STORED,
  CONSTRAINT miner_models_id_slug CHECK (id ~ '^[a-z0-9]+(-[a-z0-9]+)*$')
);

------------------------------------------------------------------------------------------------------
-- Tenant-owned tables. Every one has tenant_id (never empty: an empty app.tenant_id must match nothing),
-- and a UNIQUE (tenant_id, id) where other tables reference it, so foreign keys also pin the tenant:
-- a row can never point at another tenant's user or miner.
------------------------------------------------------------------------------------------------------
CREATE TABLE users (
  id                        text PRIMARY KEY,    -- the JWT sub; one user belongs to exactly one tenant
  tenant_id                 text NOT NULL CHECK (tenant_id <> ''),
  email                     text,
  display_name              text,
  electricity_price_usd_kwh double precision NOT NULL DEFAULT 0.07 CHECK (electricity_price_usd_kwh >= 0),
  created_at                timestamptz NOT NULL DEFAULT now(),
  updated_at                timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT users_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE TRIGGER users_touch BEFORE UPDATE ON users
  FOR EACH ROW EXECUTE FUNCTION hashinsight_touch_updated_at();

CREATE TABLE user_roles (
  tenant_id  text NOT NULL CHECK (tenant_id <> ''),
  user_id    text NOT NULL,
  role_id    text NOT NULL REFERENCES roles (id),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id, role_id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE user_subscriptions (
  tenant_id           text NOT NULL CHECK (tenant_id <> ''),
  user_id             text NOT NULL,
  plan                text NOT NULL REFERENCES subscription_plans (plan),
  requests_per_minute integer NOT NULL CHECK (requests_per_minute > 0),
  burst               integer NOT NULL CHECK (burst > 0),
  started_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE TRIGGER user_subscriptions_touch BEFORE UPDATE ON user_subscriptions
  FOR EACH ROW EXECUTE FUNCTION hashinsight_touch_updated_at();

CREATE TABLE miners (
  id                        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id                 text NOT NULL CHECK (tenant_id <> ''),
  model_id                  text NOT NULL REFERENCES miner_models (id),
  label                     text,
  serial_number             text,
  status                    text NOT NULL DEFAULT 'active',
  hashrate_ths              double precision CHECK (hashrate_ths > 0),   -- NULL: the model's
  power_w                   double precision CHECK (power_w > 0),        -- NULL: the model's
  electricity_price_usd_kwh double precision CHECK (electricity_price_usd_kwh >= 0),  -- NULL: owner's
  pool_fee_pct              double precision NOT NULL DEFAULT 2.0 CHECK (pool_fee_pct >= 0 AND pool_fee_pct < 100),
  hosting_site              text,
  purchase_price_usd        numeric(14, 2) CHECK (purchase_price_usd >= 0),
  created_at                timestamptz NOT NULL DEFAULT now(),
  updated_at                timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT miners_status_check
    CHECK (status IN ('active', 'idle', 'maintenance', 'offline', 'retired')),
  CONSTRAINT miners_tenant_id_id_key UNIQUE (tenant_id, id),
  -- NULLs are distinct: the serial number is unique per tenant only when given.
  CONSTRAINT miners_tenant_id_serial_number_key UNIQUE (tenant_id, serial_number)
);
CREATE INDEX miners_tenant_id_status_idx ON miners (tenant_id, status);
CREATE INDEX miners_model_id_idx ON miners (model_id);
CREATE TRIGGER miners_touch BEFORE UPDATE ON miners
  FOR EACH ROW EXECUTE FUNCTION hashinsight_touch_updated_at();

CREATE TABLE user_miners (
  tenant_id  text NOT NULL CHECK (tenant_id <> ''),
  user_id    text NOT NULL,
  miner_id   uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id, miner_id),
  CONSTRAINT user_miners_miner_id_key UNIQUE (miner_id),   -- a miner has one owner
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, miner_id) REFERENCES miners (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE inventory (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id  text NOT NULL CHECK (tenant_id <> ''),
  model_id   text NOT NULL REFERENCES miner_models (id),
  quantity   integer NOT NULL DEFAULT 0 CHECK (quantity >= 0),
  location   text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT inventory_tenant_model_location_key UNIQUE NULLS NOT DISTINCT (tenant_id, model_id, location)
);
CREATE TRIGGER inventory_touch BEFORE UPDATE ON inventory
  FOR EACH ROW EXECUTE FUNCTION hashinsight_touch_updated_at();

-- POST /api/treasury/execute. Ledger values are numeric (exact); Python reads them as Decimal.
CREATE TABLE trades (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id    text NOT NULL CHECK (tenant_id <> ''),
  user_id      text NOT NULL,
  side         text NOT NULL CHECK (side IN ('buy', 'sell')),
  asset        text NOT NULL DEFAULT 'BTC' CHECK (asset = 'BTC'),
  amount_btc   numeric(28, 8) NOT NULL CHECK (amount_btc > 0),
  price_usd    numeric(20, 2) NOT NULL CHECK (price_usd > 0),
  notional_usd numeric(24, 2) NOT NULL CHECK (notional_usd >= 0),
  venue        text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX trades_tenant_user_created_idx ON trades (tenant_id, user_id, created_at);

-- The API's Idempotency-Key store: a repeated key returns the first response.
CREATE TABLE idempotency_keys (
  tenant_id    text NOT NULL CHECK (tenant_id <> ''),
  user_id      text NOT NULL,
  key          text NOT NULL CHECK (key <> ''),
  request_hash text NOT NULL,
  status_code  integer,                            -- NULL while the first request is still in flight
  response     jsonb,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id, key)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);   -- expiry sweeps

-- Append-only audit trail: the application roles get INSERT (and the API SELECT), never UPDATE/DELETE;
-- the trigger below also stops the owner. No foreign keys: audit rows outlive what they describe.
CREATE TABLE audit_logs (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id   text NOT NULL CHECK (tenant_id <> ''),
  occurred_at timestamptz NOT NULL DEFAULT now(),
  actor_type  text NOT NULL DEFAULT 'user' CHECK (actor_type IN ('user', 'worker', 'system')),
  actor_id    text,                                -- users.id, or the consumer name for workers
  action      text NOT NULL,                       -- e.g. miner.create, miner.status_change
  entity_type text,
  entity_id   text,
  request_id  text,
  trace_id    text,
  source_ip   text,
  details     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_logs_tenant_occurred_idx ON audit_logs (tenant_id, occurred_at);
CREATE INDEX audit_logs_tenant_entity_idx ON audit_logs (tenant_id, entity_type, entity_id);

CREATE FUNCTION hashinsight_audit_logs_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_logs is append-only (% refused)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE ON audit_logs
  FOR EACH ROW EXECUTE FUNCTION hashinsight_audit_logs_append_only();

------------------------------------------------------------------------------------------------------
-- Derived tables, maintained by the consumers (portfolio consumer: recalc_user_portfolio(user_id)).
-- Mining inputs and outputs are double precision so Python reads floats, not Decimals.
------------------------------------------------------------------------------------------------------
CREATE TABLE user_portfolio (
  tenant_id           text NOT NULL CHECK (tenant_id <> ''),
  user_id             text NOT NULL,
  miners_total        integer NOT NULL DEFAULT 0,
  miners_by_status    jsonb NOT NULL DEFAULT '{}'::jsonb,
  active_hashrate_ths double precision NOT NULL DEFAULT 0,
  active_power_w      double precision NOT NULL DEFAULT 0,
  daily_btc           double precision NOT NULL DEFAULT 0,
  daily_revenue_usd   double precision NOT NULL DEFAULT 0,
  daily_cost_usd      double precision NOT NULL DEFAULT 0,
  daily_profit_usd    double precision NOT NULL DEFAULT 0,
  break_even_usd_kwh  double precision,            -- NULL when nothing is hashing
  snapshot_ts         timestamptz,                 -- the network_snapshots row the numbers used
  updated_at          timestamptz NOT NULL DEFAULT now(),
  last_event_id       text,
  PRIMARY KEY (tenant_id, user_id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE user_analytics (
  tenant_id         text NOT NULL CHECK (tenant_id <> ''),
  user_id           text NOT NULL,
  model_id          text NOT NULL REFERENCES miner_models (id),
  miners            integer NOT NULL DEFAULT 0,
  active_miners     integer NOT NULL DEFAULT 0,
  hashrate_ths      double precision NOT NULL DEFAULT 0,
  power_w           double precision NOT NULL DEFAULT 0,
  daily_btc         double precision NOT NULL DEFAULT 0,
  daily_revenue_usd double precision NOT NULL DEFAULT 0,
  daily_cost_usd    double precision NOT NULL DEFAULT 0,
  daily_profit_usd  double precision NOT NULL DEFAULT 0,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id, model_id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
