"""SQLAlchemy engines, one per database role (API, workers), created once per process."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine

from app.config import get_settings

T = TypeVar("T")


def _engine(url: str, pool_size: int, statement_timeout_ms: int, lock_timeout_ms: int) -> Engine:
    # Session defaults sent at connect time (libpq `options`), so they hold for every statement of every pooled
    # connection; SET LOCAL inside a transaction can still lower or raise them for one transaction.
    # plan_cache_mode: prepared statements (app/adapters/prepared.py) keep one generic plan for the connection's life.
    options = (f"-c statement_timeout={int(statement_timeout_ms)} -c lock_timeout={int(lock_timeout_ms)} "
               "-c plan_cache_mode=force_generic_plan")
    return create_engine(
        url.replace("postgresql://", "postgresql+psycopg2://", 1),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, "application_name": "hashinsight", "options": options},
    )


@cache
def api_engine() -> Engine:
    s = get_settings()
    return _engine(s.database_url, 5, s.api_statement_timeout_ms, s.api_lock_timeout_ms)


@cache
def worker_engine() -> Engine:
    s = get_settings()
    return _engine(s.worker_database_url, 3, s.worker_statement_timeout_ms, s.worker_lock_timeout_ms)


def columns(rows: Sequence[T], **getters: Callable[[T], Any]) -> dict[str, list[Any]]:
    """Rows as parallel lists, one per named column: the parameters of an `INSERT ... SELECT FROM unnest(...)`,
    which writes any number of rows in one statement."""
    return {name: [get(row) for row in rows] for name, get in getters.items()}
