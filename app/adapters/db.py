"""SQLAlchemy engines, one per database role (API, workers), created once per process."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError

from app.config import get_settings

T = TypeVar("T")


# The web's Flask handlers run on the WSGI bridge's 10 threads per process (app/entrypoints/wsgi_bridge.py); each
# holds one connection at most: a pool of that size is never short. Connections past the pool are closed when
# returned, and a new one costs a backend fork plus the planning of every prepared statement again (14 ms for
# the snapshot lookup over ~170 daily partitions), so the overflow is only a margin for the admission step.
API_POOL_SIZE = 10
API_POOL_OVERFLOW = 4
# A pooled connection idle this long is pinged before use (a restarted server has closed it). One busy within
# the last second is not: under load that saves a round trip per checkout, and a connection a restart did
# break while it was busy fails its request as a 503 and the pool recycles every connection of that moment.
PING_AFTER_IDLE_SECONDS = 1.0


def _engine(url: str, pool_size: int, statement_timeout_ms: int, lock_timeout_ms: int,
            max_overflow: int | None = None) -> Engine:
    # Session defaults sent at connect time (libpq `options`), so they hold for every statement of every pooled
    # connection; SET LOCAL inside a transaction can still lower or raise them for one transaction.
    # plan_cache_mode: prepared statements (app/adapters/prepared.py) keep one generic plan for the connection's life.
    options = (f"-c statement_timeout={int(statement_timeout_ms)} -c lock_timeout={int(lock_timeout_ms)} "
               "-c plan_cache_mode=force_generic_plan")
    engine = create_engine(
        url.replace("postgresql://", "postgresql+psycopg2://", 1),
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, "application_name": "hashinsight", "options": options},
    )
    event.listen(engine, "checkin", _stamp_checkin)

    def ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("hashinsight_checked_in")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return  # new, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)  # what pool_pre_ping runs, outside any transaction
        except Exception as exc:  # the pool discards this connection and checks out another (or connects anew)
            raise DisconnectionError(f"pooled connection is gone: {exc}") from exc

    event.listen(engine, "checkout", ping_if_idle)
    return engine


def _stamp_checkin(dbapi_connection: Any, record: Any) -> None:
    record.info["hashinsight_checked_in"] = time.monotonic()


@cache
def api_engine() -> Engine:
    s = get_settings()
    return _engine(s.database_url, API_POOL_SIZE, s.api_statement_timeout_ms, s.api_lock_timeout_ms,
                   max_overflow=API_POOL_OVERFLOW)


@cache
def worker_engine() -> Engine:
    s = get_settings()
    return _engine(s.worker_database_url, 3, s.worker_statement_timeout_ms, s.worker_lock_timeout_ms)


def columns(rows: Sequence[T], **getters: Callable[[T], Any]) -> dict[str, list[Any]]:
    """Rows as parallel lists, one per named column: the parameters of an `INSERT ... SELECT FROM unnest(...)`,
    which writes any number of rows in one statement."""
    return {name: [get(row) for row in rows] for name, get in getters.items()}
