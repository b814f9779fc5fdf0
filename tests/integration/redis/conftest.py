"""Fixtures for the Redis adapter tests: the real Redis of the native stack, a unique key prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from app.adapters.redis_client import make_redis
from app.config import get_settings


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    r = make_redis(get_settings().redis_url)
    r.ping()  # tests/conftest.py already failed the run if the port is closed; this catches a wrong DB/auth
    yield r
    r.close()


@pytest.fixture
def prefix(client: redis.Redis) -> Iterator[str]:
    p = f"test:{uuid.uuid4().hex[:12]}:"
    yield p
    keys = list(client.scan_iter(match=p + "*", count=1000))
    if keys:
        client.delete(*keys)


class FakeClock:
    """Wall-clock seconds that tests move forward by hand, so a TTL can pass without sleeping."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
