"""GCRA rate limiter against the real Redis of the native stack."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import redis

from app.adapters.rate_limit import (
    DEFAULT_PLANS,
    DISABLED,
    ENFORCED,
    FAIL_OPEN,
    RateLimiter,
    RatePlan,
    plan_for,
)
from app.adapters.redis_client import make_redis
from app.entrypoints.middleware import MAX_REQUESTS_IN_FLIGHT

T0 = 1_700_000_000.0  # an explicit clock for the deterministic tests


@pytest.fixture
def limiter(client: redis.Redis, prefix: str) -> RateLimiter:
    return RateLimiter(client, enabled=True, key_prefix=prefix)


def test_burst_then_429_with_retry_after(limiter: RateLimiter) -> None:
    plan = RatePlan("free", 60, 5)  # one request per second sustained, 5 back to back
    decisions = [limiter.check("t1", "u1", plan, now=T0) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    denied = decisions[-1]
    assert denied.retry_after_seconds == 1  # the next slot frees up one interval (1 s) later
    assert denied.reset_seconds == 5  # five intervals until the bucket is full again
    assert denied.headers() == {"RateLimit-Limit": "60", "RateLimit-Remaining": "0", "RateLimit-Reset": "5",
                                "Retry-After": "1"}
    assert denied.detail() == "Rate limit of 60 requests per minute (plan free) exceeded; retry in 1 s"
    assert "Retry-After" not in decisions[0].headers()
    assert decisions[0].mode == ENFORCED


def test_refill_over_time(limiter: RateLimiter) -> None:
    plan = RatePlan("free", 60, 2)
    assert [limiter.check("t1", "u2", plan, now=T0).allowed for _ in range(3)] == [True, True, False]
    assert limiter.check("t1", "u2", plan, now=T0 + 0.5).allowed is False  # half an interval: not yet
    assert limiter.check("t1", "u2", plan, now=T0 + 1.0).allowed is True  # one interval: one request back
    assert limiter.check("t1", "u2", plan, now=T0 + 1.0).allowed is False
    full = limiter.check("t1", "u2", plan, now=T0 + 10)  # long idle: full burst, not more
    assert (full.allowed, full.remaining) == (True, 1)


def test_refill_on_redis_time(limiter: RateLimiter, client: redis.Redis, prefix: str) -> None:
    plan = RatePlan("pro", 600, 2)  # one request per 0.1 s
    assert [limiter.check("t1", "u3", plan).allowed for _ in range(3)] == [True, True, False]
    time.sleep(0.12)
    assert limiter.check("t1", "u3", plan).allowed is True
    # the key expires when the bucket would be full again: no key left behind for idle users
    assert 0 < client.pttl(prefix + "ratelimit:t1:u3") <= 200
    # the TAT is stored as exact integer microseconds (Lua's tostring would round it to 14 digits)
    stored = client.get(prefix + "ratelimit:t1:u3")
    assert stored is not None and stored.isdigit() and len(stored) == 16


def test_users_are_independent(limiter: RateLimiter) -> None:
    plan = RatePlan("free", 60, 1)
    assert limiter.check("t1", "alice", plan, now=T0).allowed
    assert not limiter.check("t1", "alice", plan, now=T0).allowed
    assert limiter.check("t1", "bob", plan, now=T0).allowed
    assert limiter.check("t2", "alice", plan, now=T0).allowed  # same sub in another tenant is another user


def test_concurrent_requests_never_exceed_the_burst(limiter: RateLimiter) -> None:
    plan = RatePlan("free", 60, 10)
    barrier = threading.Barrier(50)
    allowed: list[bool] = []
    lock = threading.Lock()

    def hit() -> None:
        barrier.wait()
        ok = limiter.check("t1", "herd", plan, now=T0).allowed
        with lock:
            allowed.append(ok)

    threads = [threading.Thread(target=hit) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert (allowed.count(True), allowed.count(False)) == (10, 40)


def test_disabled_flag(monkeypatch: pytest.MonkeyPatch, client: redis.Redis, prefix: str) -> None:
    monkeypatch.setenv("RATE_LIMIT_ENABLED", "0")
    off = RateLimiter(client, key_prefix=prefix)
    assert off.enabled is False
    plan = RatePlan("free", 60, 1)
    decisions = [off.check("t1", "u4", plan) for _ in range(5)]
    assert all(d.allowed and d.mode == DISABLED for d in decisions)
    assert client.exists(prefix + "ratelimit:t1:u4") == 0  # Redis untouched
    monkeypatch.setenv("RATE_LIMIT_ENABLED", "1")
    assert RateLimiter(client, key_prefix=prefix).enabled is True


def test_redis_down_fails_open(caplog: pytest.LogCaptureFixture) -> None:
    dead = RateLimiter(make_redis("redis://127.0.0.1:1/0"), enabled=True)
    plan = RatePlan("free", 60, 1)
    started = time.perf_counter()
    with caplog.at_level("WARNING", logger="app.adapters.rate_limit"):
        decisions = [dead.check("t1", "u5", plan) for _ in range(3)]
    assert all(d.allowed and d.mode == FAIL_OPEN for d in decisions)
    assert dead.fail_open_count == 3
    assert caplog.text.count("fails open") == 1  # logged once per outage window, not per request
    assert time.perf_counter() - started < 2


def test_plans() -> None:
    assert DEFAULT_PLANS["free"] == RatePlan("free", 60, 20)
    assert plan_for(None) == RatePlan("free", 60, 20)  # no subscription row: free
    assert plan_for("pro", 900, 150) == RatePlan("pro", 900, 150)  # the user_subscriptions numbers win
    assert plan_for("enterprise").requests_per_minute == 3000
    with pytest.raises(ValueError):
        RatePlan("broken", 0, 1)


def test_the_event_loop_path_shares_the_bucket_and_the_answers(limiter: RateLimiter) -> None:
    """check_async (the admission middleware's path) runs the same script on the same keys as check."""
    plan = RatePlan("free", 60, 4)

    async def two_async() -> list[Any]:
        return [await limiter.check_async("t1", "u6", plan, now=T0) for _ in range(2)]

    first = [limiter.check("t1", "u6", plan, now=T0) for _ in range(2)]
    then = asyncio.run(two_async())
    last = limiter.check("t1", "u6", plan, now=T0)
    assert [d.allowed for d in first + then + [last]] == [True] * 4 + [False]
    assert [d.remaining for d in first + then] == [3, 2, 1, 0]
    assert then[-1].mode == ENFORCED and last.retry_after_seconds == 1


def test_the_event_loop_path_fails_open_when_redis_is_down() -> None:
    dead = RateLimiter(make_redis("redis://127.0.0.1:1/0"), enabled=True)
    plan = RatePlan("free", 60, 1)

    async def three() -> list[Any]:
        return [await dead.check_async("t1", "u7", plan) for _ in range(3)]

    started = time.perf_counter()
    decisions = asyncio.run(three())
    assert all(d.allowed and d.mode == FAIL_OPEN for d in decisions)
    assert dead.fail_open_count == 3
    assert time.perf_counter() - started < 2


def test_the_event_loop_path_keeps_enforcing_when_hundreds_of_requests_wait_at_once(limiter: RateLimiter) -> None:
    """An overloaded web process has hundreds of requests awaiting the limiter at once: they pipeline on the event
    loop's one connection; none of them is taken for a Redis outage (which would fail open and open the breaker)."""
    plan = RatePlan("enterprise", 3000, 500)
    many = 10 * MAX_REQUESTS_IN_FLIGHT

    async def all_at_once() -> list[Any]:
        return await asyncio.gather(*[limiter.check_async("t1", f"crowd-{i % 20}", plan) for i in range(many)])

    decisions = asyncio.run(all_at_once())
    assert len(decisions) == many
    assert all(d.mode == ENFORCED and d.allowed for d in decisions)
    assert limiter.fail_open_count == 0
