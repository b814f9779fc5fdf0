"""The shared client factory and the health ping."""

from __future__ import annotations

import time

from app.adapters.redis_client import CircuitBreaker, get_redis, make_redis, ping
from app.config import get_settings


def test_ping_live_redis() -> None:
    health = ping(get_redis())
    assert health.ok and health.detail is None and health.latency_ms is not None


def test_one_shared_client_per_url() -> None:
    assert get_redis() is get_redis(get_settings().redis_url)


def test_dead_redis_fails_fast_and_ping_never_raises() -> None:
    started = time.perf_counter()
    health = ping(make_redis("redis://127.0.0.1:1/0"))
    assert not health.ok and "ConnectionError" in (health.detail or "")
    assert time.perf_counter() - started < 1.5


def test_circuit_breaker() -> None:
    now = [100.0]
    breaker = CircuitBreaker(cooldown=2.0, clock=lambda: now[0])
    assert breaker.allow()
    breaker.failure()
    assert not breaker.allow()
    now[0] += 2.0
    assert breaker.allow()  # half-open: one try
    breaker.success()
    assert breaker.allow()
