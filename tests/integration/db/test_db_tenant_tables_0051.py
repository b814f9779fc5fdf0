"""Row-Level Security of the tenant tables of migrations 0051-0054: each tenant sees only its own rows."""

from __future__ import annotations

import uuid

import pytest

from tools import db

TABLES = ("maintenance_windows", "miner_pools", "exchange_credentials")


@pytest.fixture
def two_tenants(test_db) -> list[str]:
    tenants = [f"t-rls21-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with db.connect(test_db.admin, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO miner_models (id, manufacturer, name, hashrate_ths, power_w, release_year) "
                    "VALUES ('rls-model', 'x', 'x', 100, 3000, 2024) ON CONFLICT DO NOTHING")
        for t in tenants:
            user, miner = f"u-{t}", str(uuid.uuid4())
            cur.execute("INSERT INTO users (id, tenant_id) VALUES (%s, %s)", (user, t))
            cur.execute("INSERT INTO miners (id, tenant_id, model_id) VALUES (%s, %s, 'rls-model')", (miner, t))
            cur.execute("""INSERT INTO maintenance_windows (tenant_id, user_id, miner_id, starts_at, ends_at)
                           VALUES (%s, %s, %s, now(), now() + interval '1 hour')""", (t, user, miner))
            cur.execute("INSERT INTO miner_pools (tenant_id, miner_id, url, worker) VALUES (%s, %s, 'tcp://p', 'w')",
                        (t, miner))
            cur.execute("""INSERT INTO exchange_credentials (tenant_id, user_id, exchange, master_key_id, wrapped_key,
                                                            nonce, ciphertext, api_key_hint)
                           VALUES (%s, %s, 'paper', 'k', '\\x00', '\\x00', '\\x00', '…')""", (t, user))
    return tenants


@pytest.mark.parametrize("table", TABLES)
def test_the_api_sees_only_its_tenants_rows(test_db, two_tenants, table):
    conn = db.connect(test_db.api)
    try:
        for tenant in two_tenants:
            with conn, conn.cursor() as cur:
                db.set_tenant(cur, tenant)
                cur.execute(f"SELECT DISTINCT tenant_id FROM {table} WHERE tenant_id = ANY(%s)", (two_tenants,))
                assert [r[0] for r in cur.fetchall()] == [tenant]
        with conn, conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table}")
            assert cur.fetchone()[0] == 0  # no tenant set: nothing
    finally:
        conn.close()


def test_the_worker_reads_windows_of_its_tenant_only_and_no_secrets(test_db, two_tenants):
    conn = db.connect(test_db.worker)
    try:
        with conn, conn.cursor() as cur:
            db.set_tenant(cur, two_tenants[0])
            cur.execute("SELECT DISTINCT tenant_id FROM maintenance_windows WHERE tenant_id = ANY(%s)", (two_tenants,))
            assert [r[0] for r in cur.fetchall()] == [two_tenants[0]]
        for table in ("miner_pools", "exchange_credentials", "audit_chain_checkpoints"):
            with pytest.raises(Exception, match="permission denied"), conn, conn.cursor() as cur:
                cur.execute(f"SELECT 1 FROM {table}")
    finally:
        conn.close()
