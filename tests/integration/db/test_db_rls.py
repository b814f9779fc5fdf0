"""Row-Level Security and privileges: tenants are isolated, the app roles cannot get around it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg2
import pytest
from psycopg2 import errors
from psycopg2.extensions import connection as PgConnection

from tools import db

if TYPE_CHECKING:
    from conftest import DbUnderTest, Tenant

TENANT_TABLES = [
    "users",
    "user_roles",
    "user_subscriptions",
    "miners",
    "user_miners",
    "inventory",
    "miner_telemetry",
    "forecast_daily",
    "event_outbox",
    "consumer_inbox",
    "audit_logs",
    "user_portfolio",
    "user_analytics",
    "idempotency_keys",
    "trades",
    "maintenance_windows",
    "miner_pools",
    "exchange_credentials",
    "audit_chain_checkpoints",
]
# Tables of 0051-0054: their isolation is tested in test_db_tenant_tables_0021.py (the `tenants` fixture
# seeds none of them).
LATER_TABLES = ("maintenance_windows", "miner_pools", "exchange_credentials", "audit_chain_checkpoints")
API_READABLE = [t for t in TENANT_TABLES if t != "consumer_inbox" and t not in LATER_TABLES]
WORKER_READABLE = [
    "users",
    "miners",
    "user_miners",
    "forecast_daily",
    "event_outbox",
    "consumer_inbox",
    "user_portfolio",
    "user_analytics",
]
APP_ROLES = ["hashinsight_api", "hashinsight_worker"]
EXPECTED_QUAL = "(tenant_id = NULLIF(current_setting('app.tenant_id'::text, true), ''::text))"


def tenant_ids_seen(conn: PgConnection, table: str, tenant: str | None) -> set[str]:
    with conn, conn.cursor() as cur:
        if tenant is not None:
            db.set_tenant(cur, tenant)
        cur.execute(f"SELECT DISTINCT tenant_id FROM {table}")
        return {r[0] for r in cur.fetchall()}


def run_as(conn: PgConnection, tenant: str | None, sql: str, params: tuple = ()) -> int:
    """Execute in one transaction scoped to tenant; returns rowcount."""
    with conn, conn.cursor() as cur:
        if tenant is not None:
            db.set_tenant(cur, tenant)
        cur.execute(sql, params)
        return cur.rowcount


def admin_scalar(test_db: DbUnderTest, sql: str, params: tuple = ()) -> object:
    conn = db.connect(test_db.admin)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()[0]
    finally:
        conn.close()


# --- reads ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", API_READABLE)
def test_api_reads_only_its_tenant(api_conn: PgConnection, tenants: tuple[Tenant, Tenant], table: str) -> None:
    a, b = tenants
    assert tenant_ids_seen(api_conn, table, a.tenant_id) == {a.tenant_id}
    assert tenant_ids_seen(api_conn, table, b.tenant_id) == {b.tenant_id}


@pytest.mark.parametrize("table", WORKER_READABLE)
def test_worker_reads_only_its_tenant(worker_conn: PgConnection, tenants: tuple[Tenant, Tenant], table: str) -> None:
    a, _ = tenants
    assert tenant_ids_seen(worker_conn, table, a.tenant_id) == {a.tenant_id}


@pytest.mark.parametrize("table", API_READABLE)
def test_unset_tenant_sees_nothing(api_conn: PgConnection, tenants: tuple[Tenant, Tenant], table: str) -> None:
    assert tenant_ids_seen(api_conn, table, None) == set()


def test_reset_or_expired_tenant_sees_nothing(api_conn: PgConnection, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    with api_conn.cursor() as cur:
        # Set for the session, then emptied: the setting now reads '' rather than NULL.
        cur.execute("SELECT set_config('app.tenant_id', %s, false)", (a.tenant_id,))
        cur.execute("SELECT count(*) FROM miners")
        assert cur.fetchone()[0] == 1
        cur.execute("SELECT set_config('app.tenant_id', '', false)")
        cur.execute("SELECT count(*) FROM miners")
        assert cur.fetchone()[0] == 0
        cur.execute("RESET app.tenant_id")
        cur.execute("SELECT current_setting('app.tenant_id', true), count(*) FROM miners")
        assert cur.fetchone() == ("", 0)
    api_conn.commit()
    # Transaction-local (set_tenant): gone after commit.
    with api_conn, api_conn.cursor() as cur:
        db.set_tenant(cur, a.tenant_id)
        cur.execute("SELECT count(*) FROM miners")
        assert cur.fetchone()[0] == 1
    with api_conn, api_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM miners")
        assert cur.fetchone()[0] == 0


def test_where_clause_cannot_reach_other_tenant(api_conn: PgConnection, tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    with api_conn, api_conn.cursor() as cur:
        db.set_tenant(cur, a.tenant_id)
        cur.execute("SELECT count(*) FROM miners WHERE tenant_id = %s OR id = %s", (b.tenant_id, b.miner_id))
        assert cur.fetchone()[0] == 0


# --- writes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE miners SET status = 'retired' WHERE id = %(miner)s",
        "UPDATE users SET electricity_price_usd_kwh = 9 WHERE id = %(user)s",
        "UPDATE user_subscriptions SET plan = 'free' WHERE user_id = %(user)s",
        "UPDATE inventory SET quantity = 0 WHERE tenant_id = %(tenant)s",
        "UPDATE idempotency_keys SET status_code = 500 WHERE user_id = %(user)s",
        "DELETE FROM idempotency_keys WHERE user_id = %(user)s",
    ],
)
def test_api_cannot_change_other_tenant(
    api_conn: PgConnection, test_db: DbUnderTest, tenants: tuple[Tenant, Tenant], sql: str
) -> None:
    a, b = tenants
    params = {"miner": b.miner_id, "user": b.user_id, "tenant": b.tenant_id}
    assert run_as(api_conn, a.tenant_id, sql, params) == 0  # type: ignore[arg-type]
    assert run_as(api_conn, b.tenant_id, "SELECT 1 FROM miners WHERE status = 'active'") == 1


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM user_portfolio WHERE user_id = %(user)s",
        "DELETE FROM user_analytics WHERE user_id = %(user)s",
        "DELETE FROM forecast_daily WHERE user_id = %(user)s",
        "UPDATE user_portfolio SET miners_total = 99 WHERE user_id = %(user)s",
        "DELETE FROM consumer_inbox WHERE tenant_id = %(tenant)s",
        "UPDATE event_outbox SET processed = true, processed_at = now() WHERE id = %(event)s",
    ],
)
def test_worker_cannot_change_other_tenant(worker_conn: PgConnection, tenants: tuple[Tenant, Tenant], sql: str) -> None:
    a, b = tenants
    params = {"user": b.user_id, "tenant": b.tenant_id, "event": b.outbox_id}
    assert run_as(worker_conn, a.tenant_id, sql, params) == 0  # type: ignore[arg-type]
    for table in ("user_portfolio", "user_analytics", "forecast_daily", "consumer_inbox"):
        assert run_as(worker_conn, b.tenant_id, f"SELECT 1 FROM {table}") == 1


def test_api_cannot_write_into_other_tenant(api_conn: PgConnection, tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        run_as(
            api_conn, a.tenant_id, "INSERT INTO miners (tenant_id, model_id) VALUES (%s, 'test-model')", (b.tenant_id,)
        )
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        run_as(api_conn, a.tenant_id, "UPDATE miners SET tenant_id = %s WHERE id = %s", (b.tenant_id, a.miner_id))
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        run_as(api_conn, None, "INSERT INTO miners (tenant_id, model_id) VALUES (%s, 'test-model')", (a.tenant_id,))


def test_api_writes_its_own_tenant(api_conn: PgConnection, tenants: tuple[Tenant, Tenant]) -> None:
    """The happy path of POST /api/miners, as the API role: business rows, outbox and audit together."""
    a, _ = tenants
    with api_conn.cursor() as cur:
        db.set_tenant(cur, a.tenant_id)
        cur.execute(
            "INSERT INTO users (id, tenant_id) VALUES (%s, %s) ON CONFLICT DO NOTHING", (a.user_id, a.tenant_id)
        )
        cur.execute("INSERT INTO miners (tenant_id, model_id) VALUES (%s, 'test-model') RETURNING id", (a.tenant_id,))
        miner_id = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO user_miners (tenant_id, user_id, miner_id) VALUES (%s, %s, %s)",
            (a.tenant_id, a.user_id, miner_id),
        )
        cur.execute("UPDATE miners SET status = 'idle' WHERE id = %s RETURNING updated_at > created_at", (miner_id,))
        cur.execute(
            "INSERT INTO event_outbox (id, kind, user_id, entity_id, payload, tenant_id) "
            "VALUES (gen_random_uuid()::text, 'miner.added', %s, %s, '{}', %s)",
            (a.user_id, miner_id, a.tenant_id),
        )
        cur.execute(
            "INSERT INTO audit_logs (tenant_id, actor_id, action) VALUES (%s, %s, 'miner.create') RETURNING id",
            (a.tenant_id, a.user_id),
        )
        cur.execute("SELECT backlog >= 2 FROM hashinsight_outbox_stats()")  # both tenants' unprocessed rows
        assert cur.fetchone()[0] is True
    api_conn.rollback()


# --- audit_logs is append-only -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["api", "worker"])
@pytest.mark.parametrize("sql", ["UPDATE audit_logs SET action = 'x'", "DELETE FROM audit_logs", "TRUNCATE audit_logs"])
def test_app_roles_cannot_rewrite_audit_logs(
    request: pytest.FixtureRequest, tenants: tuple[Tenant, Tenant], role: str, sql: str
) -> None:
    conn = request.getfixturevalue(f"{role}_conn")
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
        run_as(conn, tenants[0].tenant_id, sql)


def test_worker_appends_audit_but_cannot_read_it(worker_conn: PgConnection, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    with worker_conn.cursor() as cur:
        db.set_tenant(cur, a.tenant_id)
        cur.execute(
            "INSERT INTO audit_logs (tenant_id, actor_type, actor_id, action) "
            "VALUES (%s, 'worker', 'portfolio', 'portfolio.recalc')",
            (a.tenant_id,),
        )
        with pytest.raises(errors.InsufficientPrivilege):
            cur.execute("SELECT * FROM audit_logs")
    worker_conn.rollback()


def test_owner_cannot_rewrite_audit_logs_either(admin_conn: PgConnection, tenants: tuple[Tenant, Tenant]) -> None:
    with admin_conn.cursor() as cur:
        cur.execute("SET ROLE hashinsight_owner")
        db.set_tenant(cur, tenants[0].tenant_id)  # FORCE: without it the owner would match no row at all
        with pytest.raises(errors.InsufficientPrivilege, match="append-only"):
            cur.execute("UPDATE audit_logs SET action = 'x' WHERE tenant_id = %s", (tenants[0].tenant_id,))
    admin_conn.rollback()


# --- no way around RLS -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", APP_ROLES)
def test_app_roles_are_not_privileged(admin_conn: PgConnection, role: str) -> None:
    with admin_conn.cursor() as cur:
        cur.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication, "
            "pg_has_role(oid, 'hashinsight_owner', 'MEMBER') FROM pg_roles WHERE rolname = %s",
            (role,),
        )
        assert cur.fetchone() == (False, False, False, False, False, False)
        cur.execute("SELECT count(*) FROM pg_class WHERE relowner = %s::regrole", (role,))
        assert cur.fetchone()[0] == 0


@pytest.mark.parametrize("role", ["api", "worker"])
@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE miners DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE miners NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON miners",
        "CREATE POLICY open_door ON miners USING (true)",
        "ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only",
        "SET ROLE hashinsight_owner",
        "SET ROLE hashinsight_ops",
        "CREATE TABLE sneaky (id int)",
        "SELECT hashinsight_secure_tenant_table('miners')",
    ],
)
def test_app_roles_cannot_disable_rls(request: pytest.FixtureRequest, role: str, sql: str) -> None:
    conn = request.getfixturevalue(f"{role}_conn")
    with pytest.raises(errors.InsufficientPrivilege):
        run_as(conn, None, sql)


def test_row_security_off_is_an_error_not_a_bypass(api_conn: PgConnection, tenants: tuple[Tenant, Tenant]) -> None:
    with api_conn.cursor() as cur:
        cur.execute("SET row_security = off")
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            cur.execute("SELECT count(*) FROM miners")
    api_conn.rollback()


@pytest.mark.parametrize(
    "table", ["miner_models", "network_snapshots", "roles", "permissions", "role_permissions", "subscription_plans"]
)
def test_reference_tables_are_read_only_for_the_api(api_conn: PgConnection, table: str) -> None:
    with api_conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table}")  # readable without a tenant
        with pytest.raises(errors.InsufficientPrivilege):
            cur.execute(f"DELETE FROM {table}")
    api_conn.rollback()


def test_every_tenant_table_is_forced_and_has_the_policy(admin_conn: PgConnection) -> None:
    """Catalog-wide: catches a future tenant table that forgot hashinsight_secure_tenant_table()."""
    with admin_conn.cursor() as cur:
        cur.execute("""
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, p.qual, p.with_check
            FROM pg_class c
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
            LEFT JOIN pg_policies p ON p.schemaname = 'public' AND p.tablename = c.relname
                                   AND p.policyname = 'tenant_isolation'
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
            ORDER BY 1""")
        rows = cur.fetchall()
    assert sorted(r[0] for r in rows) == sorted(TENANT_TABLES)
    for name, enabled, forced, qual, check in rows:
        assert (enabled, forced, qual, check) == (True, True, EXPECTED_QUAL, EXPECTED_QUAL), name


def test_debezium_reads_the_whole_outbox_and_nothing_else(
    debezium_conn: PgConnection, tenants: tuple[Tenant, Tenant]
) -> None:
    assert {a.tenant_id for a in tenants} <= tenant_ids_seen(debezium_conn, "event_outbox", None)
    with pytest.raises(errors.InsufficientPrivilege):
        tenant_ids_seen(debezium_conn, "miners", None)
    with pytest.raises(errors.InsufficientPrivilege):
        run_as(debezium_conn, None, "UPDATE event_outbox SET processed = true")


def test_worker_may_mark_processed_but_not_edit_events(
    worker_conn: PgConnection, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    with worker_conn.cursor() as cur:
        db.set_tenant(cur, a.tenant_id)
        cur.execute("UPDATE event_outbox SET processed = true, processed_at = now() WHERE id = %s", (a.outbox_id,))
        assert cur.rowcount == 1
        with pytest.raises(errors.InsufficientPrivilege):
            cur.execute("UPDATE event_outbox SET payload = '{}' WHERE id = %s", (a.outbox_id,))
    worker_conn.rollback()
    for sql in (
        "INSERT INTO miners (tenant_id, model_id) VALUES (%s, 'test-model')",
        "INSERT INTO event_outbox (id, kind, user_id, payload, tenant_id) VALUES ('x', 'a.b', 'u', '{}', %s)",
    ):
        with pytest.raises(errors.InsufficientPrivilege):
            run_as(worker_conn, a.tenant_id, sql, (a.tenant_id,))


def test_roles_cannot_log_in_where_they_should_not(test_db: DbUnderTest) -> None:
    for role in ("hashinsight_owner", "hashinsight_ops"):
        with pytest.raises(psycopg2.OperationalError):
            db.connect(db.with_credentials(test_db.admin, role, role)).close()
