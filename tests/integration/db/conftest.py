"""DB fixtures: a throwaway database per test session, migrated from scratch.

Isolation: the tests create `hashinsight_test_<pid>` on the cluster ADMIN_DATABASE_URL points at (the
native stack's PostgreSQL), run every migration into it, and drop it at the end (KEEP_TEST_DB=1 keeps it).
The `hashinsight` database itself is never touched. Roles are cluster-wide and created idempotently by
0001, so they are shared with `hashinsight`. PostgreSQL unreachable = every test here errors (no skips).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psycopg2
import pytest
from psycopg2.extensions import connection as PgConnection

from tools import db, migrate


@dataclass(frozen=True)
class DbUnderTest:
    name: str
    admin: str
    api: str
    worker: str
    debezium: str
    migrate_output: tuple[str, ...]


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    user_id: str
    miner_id: str
    outbox_id: str
    trade_id: str


@pytest.fixture(scope="session")
def test_db() -> Iterator[DbUnderTest]:
    admin = db.admin_url()
    try:
        conn = db.connect(admin, autocommit=True)
    except psycopg2.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is unreachable at {db.redact(admin)} ({str(exc).strip()}). "
            "Start it with `bash infra/stack.sh up postgres` (make test does).",
            pytrace=False,
        )
    name = f"hashinsight_test_{os.getpid()}"
    try:
        with conn.cursor() as cur:
            # Leftovers of killed runs on this machine.
            cur.execute("SELECT datname FROM pg_database WHERE datname ~ '^hashinsight_test_[0-9]+$'")
            for (stale,) in cur.fetchall():
                if stale == name or not db.owner_alive(int(stale.rsplit("_", 1)[1])):
                    cur.execute(f'DROP DATABASE "{stale}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING UTF8')
    finally:
        conn.close()

    url = db.with_database(admin, name)
    output: list[str] = []
    migrate.migrate(url, out=output.append)
    yield DbUnderTest(
        name=name,
        admin=url,
        api=db.as_role_of(db.api_url(), url),
        worker=db.as_role_of(db.worker_url(), url),
        debezium=db.with_credentials(url, "debezium", "debezium"),
        migrate_output=tuple(output),
    )
    if os.environ.get("KEEP_TEST_DB") != "1":
        conn = db.connect(admin, autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()


def _conn(url: str) -> Iterator[PgConnection]:
    conn = db.connect(url, application_name="hashinsight-db-tests")
    try:
        yield conn
    finally:
        conn.close()  # an open transaction is rolled back


@pytest.fixture
def admin_conn(test_db: DbUnderTest) -> Iterator[PgConnection]:
    yield from _conn(test_db.admin)


@pytest.fixture
def api_conn(test_db: DbUnderTest) -> Iterator[PgConnection]:
    yield from _conn(test_db.api)


@pytest.fixture
def worker_conn(test_db: DbUnderTest) -> Iterator[PgConnection]:
    yield from _conn(test_db.worker)


@pytest.fixture
def debezium_conn(test_db: DbUnderTest) -> Iterator[PgConnection]:
    yield from _conn(test_db.debezium)


def _insert_tenant(cur, t: Tenant) -> None:
    """One row in every tenant table, written as the superuser (which bypasses RLS)."""
    now = datetime.now(timezone.utc)
    cur.execute("INSERT INTO users (id, tenant_id) VALUES (%s, %s)", (t.user_id, t.tenant_id))
    cur.execute(
        "INSERT INTO user_roles (tenant_id, user_id, role_id) VALUES (%s, %s, 'viewer')", (t.tenant_id, t.user_id)
    )
    cur.execute(
        "INSERT INTO user_subscriptions (tenant_id, user_id, plan, requests_per_minute, burst) "
        "VALUES (%s, %s, 'pro', 600, 100)",
        (t.tenant_id, t.user_id),
    )
    cur.execute(
        "INSERT INTO miners (id, tenant_id, model_id, label) VALUES (%s, %s, 'test-model', 'm')",
        (t.miner_id, t.tenant_id),
    )
    cur.execute(
        "INSERT INTO user_miners (tenant_id, user_id, miner_id) VALUES (%s, %s, %s)",
        (t.tenant_id, t.user_id, t.miner_id),
    )
    cur.execute(
        "INSERT INTO inventory (tenant_id, model_id, quantity, location) VALUES (%s, 'test-model', 1, 'x')",
        (t.tenant_id,),
    )
    cur.execute(
        "INSERT INTO miner_telemetry (tenant_id, miner_id, ts, hashrate_ths, power_w) VALUES (%s, %s, %s, 100, 3000)",
        (t.tenant_id, t.miner_id, now),
    )
    cur.execute(
        "INSERT INTO forecast_daily (tenant_id, user_id, day) VALUES (%s, %s, %s)",
        (t.tenant_id, t.user_id, (now + timedelta(days=1)).date()),
    )
    cur.execute(
        "INSERT INTO event_outbox (id, kind, user_id, entity_id, payload, idempotency_key, tenant_id) "
        "VALUES (%s, 'miner.added', %s, %s, '{}', %s, %s)",
        (t.outbox_id, t.user_id, t.miner_id, f"{t.tenant_id}:seed-key", t.tenant_id),
    )
    cur.execute(
        "INSERT INTO consumer_inbox (consumer_name, event_id, tenant_id) VALUES ('portfolio', %s, %s)",
        (t.outbox_id, t.tenant_id),
    )
    cur.execute(
        "INSERT INTO audit_logs (tenant_id, actor_id, action, entity_type, entity_id) "
        "VALUES (%s, %s, 'miner.create', 'miner', %s)",
        (t.tenant_id, t.user_id, t.miner_id),
    )
    cur.execute(
        "INSERT INTO user_portfolio (tenant_id, user_id, miners_total) VALUES (%s, %s, 1)", (t.tenant_id, t.user_id)
    )
    cur.execute(
        "INSERT INTO user_analytics (tenant_id, user_id, model_id, miners) VALUES (%s, %s, 'test-model', 1)",
        (t.tenant_id, t.user_id),
    )
    cur.execute(
        "INSERT INTO idempotency_keys (tenant_id, user_id, key, request_hash, status_code) "
        "VALUES (%s, %s, 'k1', 'h', 201)",
        (t.tenant_id, t.user_id),
    )
    cur.execute(
        "INSERT INTO trades (id, tenant_id, user_id, side, amount_btc, price_usd, notional_usd, venue) "
        "VALUES (%s, %s, %s, 'buy', 0.5, 80000, 40000, 'test')",
        (t.trade_id, t.tenant_id, t.user_id),
    )


@pytest.fixture(scope="session")
def tenants(test_db: DbUnderTest) -> tuple[Tenant, Tenant]:
    """Tenants A and B with one row in every tenant table (ids unique to this session)."""
    run = uuid.uuid4().hex[:8]
    pair = tuple(
        Tenant(
            tenant_id=f"tenant-{x}-{run}",
            user_id=f"user-{x}-{run}",
            miner_id=str(uuid.uuid4()),
            outbox_id=str(uuid.uuid4()),
            trade_id=str(uuid.uuid4()),
        )
        for x in ("a", "b")
    )
    conn = db.connect(test_db.admin)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO miner_models (id, manufacturer, name, hashrate_ths, power_w, release_year) "
                "VALUES ('test-model', 'Test', 'Test', 100, 3000, 2024) ON CONFLICT DO NOTHING"
            )
            for t in pair:
                _insert_tenant(cur, t)
    finally:
        conn.close()
    return pair  # type: ignore[return-value]
