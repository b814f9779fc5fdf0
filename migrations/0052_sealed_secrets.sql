-- 0052: sealed secrets: miners' pool passwords and users' exchange API keys.
--
-- Envelope encryption (app/adapters/kms.py, docs/security.md): each record has its own random AES-256-GCM
-- data key; the ciphertext is stored with its nonce, and the data key only wrapped by a KMS master key whose
-- id is stored beside it (master_key_id). Rotating the master key rewrites wrapped_key and master_key_id and
-- never the ciphertext. The additional authenticated data binds a ciphertext to its row (tenant, owner,
-- purpose), so a ciphertext copied onto another row does not decrypt. No column ever holds a plaintext secret;
-- the hint columns hold at most a few trailing characters, for the UI.
SET LOCAL ROLE hashinsight_owner;

CREATE TABLE miner_pools (
  tenant_id     text NOT NULL CHECK (tenant_id <> ''),
  miner_id      uuid NOT NULL,
  url           text NOT NULL,
  worker        text NOT NULL,
  -- The sealed password; all four are NULL when the pool has no password.
  master_key_id text,
  wrapped_key   bytea,
  nonce         bytea,
  ciphertext    bytea,
  password_hint text,
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, miner_id),
  CONSTRAINT miner_pools_sealed_check CHECK (
    (master_key_id IS NULL) = (ciphertext IS NULL) AND (wrapped_key IS NULL) = (ciphertext IS NULL)
    AND (nonce IS NULL) = (ciphertext IS NULL)),
  FOREIGN KEY (tenant_id, miner_id) REFERENCES miners (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE exchange_credentials (
  tenant_id     text NOT NULL CHECK (tenant_id <> ''),
  user_id       text NOT NULL,
  exchange      text NOT NULL,
  -- One sealed record: the JSON {"api_key": ..., "api_secret": ...} under one data key.
  master_key_id text NOT NULL,
  wrapped_key   bytea NOT NULL,
  nonce         bytea NOT NULL,
  ciphertext    bytea NOT NULL,
  api_key_hint  text NOT NULL,
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id, exchange),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- Master key rotation walks the records still wrapped by an older key.
CREATE INDEX miner_pools_master_key_idx ON miner_pools (master_key_id) WHERE master_key_id IS NOT NULL;
CREATE INDEX exchange_credentials_master_key_idx ON exchange_credentials (master_key_id);

RESET ROLE;

SELECT hashinsight_secure_tenant_table(t)
  FROM unnest(ARRAY['miner_pools', 'exchange_credentials']::regclass[]) AS t;
GRANT SELECT, INSERT, UPDATE, DELETE ON miner_pools TO hashinsight_api;
GRANT SELECT, INSERT, UPDATE ON exchange_credentials TO hashinsight_api;
