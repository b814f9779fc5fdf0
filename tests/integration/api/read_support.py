"""Helpers for the read-side tests (test_read_*, test_analytics_*, test_health_*): fleets written straight into
the test database, the consumers' effects run in-process, and a private cache namespace per test.

The consumers are not running against the throwaway database, so a test plays their part: recalc() is what the
portfolio worker does for an event (recalc_user_portfolio in a UnitOfWork on the worker role's engine), refresh()
what the intel worker does, and invalidating the cache key is their after_commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from app.adapters import cache as cache_module
from app.adapters.cache import Cache
from app.adapters.db import worker_engine
from app.adapters.redis_client import get_redis
from app.domain.forecast import Forecast
from app.domain.portfolio import Portfolio
from app.service_layer.forecast import refresh_forecast
from app.service_layer.portfolio import recalc_user_portfolio
from app.service_layer.unit_of_work import UnitOfWork

# Seeded by `tools.seed --size small` in the API tests' database.
S21, S19_PRO, M50S = "antminer-s21", "antminer-s19-pro", "whatsminer-m50s"


def add_miners(admin_db: Any, user: Any, miners: Iterable[tuple[str, str]], price: float = 0.06) -> list[str]:
    """Insert the user (if new) and miners [(model_id, status), ...] owned by them; returns the miner ids."""
    admin_db.execute(
        "INSERT INTO users (id, tenant_id, electricity_price_usd_kwh) VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING",
        user.user_id, user.tenant_id, price,
    )
    ids = []
    for model_id, status in miners:
        miner_id = str(uuid.uuid4())
        admin_db.execute(
            "INSERT INTO miners (id, tenant_id, model_id, label, status) VALUES (%s, %s, %s, %s, %s)",
            miner_id, user.tenant_id, model_id, f"{model_id} {miner_id[:4]}", status,
        )
        admin_db.execute(
            "INSERT INTO user_miners (tenant_id, user_id, miner_id) VALUES (%s, %s, %s)",
            user.tenant_id, user.user_id, miner_id,
        )
        ids.append(miner_id)
    return ids


def recalc(user: Any, last_event_id: str | None = None) -> Portfolio:
    """The portfolio consumer's effect for one event (without the cache invalidation)."""
    with UnitOfWork(worker_engine(), user.tenant_id) as uow:
        portfolio = recalc_user_portfolio(uow, user.user_id, last_event_id=last_event_id)
        uow.commit()
    return portfolio


def refresh(user: Any) -> Forecast:
    """The intel consumer's effect for one event (without the cache invalidation)."""
    with UnitOfWork(worker_engine(), user.tenant_id) as uow:
        forecast = refresh_forecast(uow, user.user_id)
        uow.commit()
    return forecast


@contextmanager
def private_cache(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> Iterator[Cache]:
    """Make get_cache() return a Cache under a key prefix of its own (deleted afterwards)."""
    prefix = f"test:read:{uuid.uuid4().hex[:10]}:"
    cache = Cache(key_prefix=prefix, **kwargs)
    monkeypatch.setattr(cache_module, "_shared", cache)
    try:
        yield cache
    finally:
        cache.drain(5)
        client = get_redis()
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)


def record_calls(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[Any]:
    """Wrap owner.<name> so each call's first argument is recorded (then the original runs); returns the record."""
    calls: list[Any] = []
    original = getattr(owner, name)

    def recorded(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0] if args else None)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, recorded)
    return calls
