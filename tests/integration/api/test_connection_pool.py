"""The API's connection pool on the real PostgreSQL: sized for the web's threads, pings only idle connections,
and heals by itself when the server has closed a pooled connection; read transactions are what they claim."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from app.adapters import db
from app.entrypoints.wsgi_bridge import THREADS
from app.service_layer.read_models import read_transaction
from tools import db as tools_db


@pytest.fixture
def engine() -> Iterator[Engine]:
    db.api_engine.cache_clear()
    engine = db.api_engine()
    yield engine
    engine.dispose()
    db.api_engine.cache_clear()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_the_pool_holds_a_connection_for_every_handler_thread(engine: Engine) -> None:
    assert engine.pool.size() == db.API_POOL_SIZE >= THREADS
    # Connections past the pool are closed on return (a new one re-plans every prepared statement).
    assert engine.pool._max_overflow == db.API_POOL_OVERFLOW  # type: ignore[attr-defined]


def test_a_connection_used_a_moment_ago_is_not_pinged_and_an_idle_one_is(engine: Engine,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    pings: list[object] = []
    real_ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda conn: pings.append(conn) or real_ping(conn))
    first = _backend_pid(engine)  # a new connection: not pinged
    again = _backend_pid(engine)  # back in the pool just now: not pinged
    assert (first, pings) == (again, [])
    time.sleep(db.PING_AFTER_IDLE_SECONDS + 0.2)
    assert _backend_pid(engine) == first and len(pings) == 1  # idle past the threshold: pinged, still alive


def test_a_pooled_connection_the_server_closed_is_replaced_without_an_error(engine: Engine) -> None:
    pid = _backend_pid(engine)
    with tools_db.connect(tools_db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))  # what a server restart does to the pool
    time.sleep(db.PING_AFTER_IDLE_SECONDS + 0.2)
    replacement = _backend_pid(engine)  # the ping fails, the pool connects anew, the caller sees nothing
    assert replacement != pid


def test_a_read_transaction_is_repeatable_read_read_only_and_scoped_to_its_tenant(engine: Engine) -> None:
    with read_transaction(engine, "tenant-read-check") as conn:
        assert conn.execute(text("SHOW transaction_isolation")).scalar_one() == "repeatable read"
        assert conn.execute(text("SHOW transaction_read_only")).scalar_one() == "on"
        assert conn.execute(text("SELECT current_setting('app.tenant_id')")).scalar_one() == "tenant-read-check"
    with engine.connect() as conn:  # nothing of it stays on the pooled connection
        assert conn.execute(text("SHOW transaction_isolation")).scalar_one() == "read committed"
        assert conn.execute(text("SHOW transaction_read_only")).scalar_one() == "off"
        assert conn.execute(text("SELECT current_setting('app.tenant_id', true)")).scalar_one() in (None, "")
