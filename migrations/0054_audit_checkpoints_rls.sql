-- 0054: audit_chain_checkpoints (0053) carries tenant_id, so it gets the tenant policy like every tenant table.
-- No application role is granted anything on it; the administrator's archive tool and the chain trigger (owned
-- by the BYPASSRLS role hashinsight_ops) are its only readers and writers.
SELECT hashinsight_secure_tenant_table('audit_chain_checkpoints');
