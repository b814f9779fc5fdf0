"""SQLAlchemy engines, one per database role (API, workers), created once per process."""

from __future__ import annotations

from functools import cache

from sqlalchemy import Engine, create_engine

from app.config import get_settings


def _engine(url: str, pool_size: int) -> Engine:
    return create_engine(
        url.replace("postgresql://", "postgresql+psycopg2://", 1),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, "application_name": "hashinsight"},
    )


@cache
def api_engine() -> Engine:
    return _engine(get_settings().database_url, pool_size=5)


@cache
def worker_engine() -> Engine:
    return _engine(get_settings().worker_database_url, pool_size=3)
