-- 0006: access-control and plan reference data the API relies on before any seed runs
-- (just-in-time provisioning gives a new user a role, and a user without a subscription row is on free).
-- Miner models are reference data too, but come from the seed (tools/seed.py), with their spec sheets.

INSERT INTO permissions (id, description) VALUES
  ('miners:read', 'list and read miners'),
  ('miners:write', 'add miners, change their status, bulk import'),
  ('portfolio:read', 'read the portfolio and analytics'),
  ('intel:read', 'read forecasts'),
  ('treasury:trade', 'execute treasury trades'),
  ('ops:read', 'read operations schedules and health')
ON CONFLICT (id) DO UPDATE SET description = EXCLUDED.description;

INSERT INTO roles (id, name, description) VALUES
  ('viewer', 'Viewer', 'reads fleet, portfolio, forecasts and operations'),
  ('operator', 'Operator', 'viewer plus fleet changes'),
  ('trader', 'Trader', 'portfolio, forecasts and treasury trades'),
  ('admin', 'Administrator', 'every permission')
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description;

INSERT INTO role_permissions (role_id, permission_id) VALUES
  ('viewer', 'miners:read'), ('viewer', 'portfolio:read'), ('viewer', 'intel:read'), ('viewer', 'ops:read'),
  ('operator', 'miners:read'), ('operator', 'miners:write'), ('operator', 'portfolio:read'),
  ('operator', 'intel:read'), ('operator', 'ops:read'),
  ('trader', 'portfolio:read'), ('trader', 'intel:read'), ('trader', 'treasury:trade'),
  ('admin', 'miners:read'), ('admin', 'miners:write'), ('admin', 'portfolio:read'), ('admin', 'intel:read'),
  ('admin', 'treasury:trade'), ('admin', 'ops:read')
ON CONFLICT DO NOTHING;

-- Requests per minute and burst of each plan; user_subscriptions copies them per user (and may differ).
INSERT INTO subscription_plans (plan, requests_per_minute, burst, description) VALUES
  ('free', 60, 20, 'default for users without a subscription row'),
  ('pro', 600, 100, 'professional'),
  ('enterprise', 3000, 500, 'enterprise')
ON CONFLICT (plan) DO UPDATE SET requests_per_minute = EXCLUDED.requests_per_minute,
  burst = EXCLUDED.burst, description = EXCLUDED.description;
