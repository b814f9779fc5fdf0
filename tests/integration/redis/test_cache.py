"""Stale-while-revalidate cache against the real Redis of the native stack."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

import pytest
import redis

from app.adapters.cache import (
    BYPASS,
    COUNTS_EVERY_SECONDS,
    FRESH,
    MISS,
    STALE,
    TTL_FORECAST,
    TTL_PORTFOLIO,
    Cache,
    Fresh,
    analytics_key,
    forecast_key,
    ops_schedule_key,
    portfolio_key,
)
from app.adapters.redis_client import make_redis
from app.config import get_settings


class Loader:
    """Counts calls; optionally slow, so concurrent callers really overlap."""

    def __init__(self, value: Any = "v1", delay: float = 0.0) -> None:
        self.value, self.delay, self.calls = value, delay, 0
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        return self.value


def run_concurrently(n: int, fn: Any) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except BaseException as exc:  # surfaced below, not lost in a thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors, errors
    return results


@pytest.fixture
def cache(client: redis.Redis, prefix: str, clock: Any) -> Cache:
    return Cache(client, key_prefix=prefix, clock=clock)


def test_key_builders_and_ttls() -> None:
    assert portfolio_key("u1") == "user_portfolio:u1"
    assert analytics_key("u1") == "user_analytics:u1"
    assert forecast_key("u1") == "forecast:u1"
    assert ops_schedule_key("u1", date(2025, 1, 5)) == "ops_schedule:u1:20250105"
    late_evening_in_new_york = datetime(2025, 1, 5, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert ops_schedule_key("u1", late_evening_in_new_york) == "ops_schedule:u1:20250106"  # UTC day
    assert (TTL_PORTFOLIO, TTL_FORECAST) == (600, 1800)


def test_miss_then_fresh_hit_does_not_call_the_loader(cache: Cache, client: redis.Redis, prefix: str) -> None:
    load = Loader({"n": 1})
    first = cache.get_or_load_result("user_portfolio:u1", load, ttl=600)
    assert (first.value, first.status, load.calls) == ({"n": 1}, MISS, 1)
    second = cache.get_or_load_result("user_portfolio:u1", load, ttl=600)
    assert (second.value, second.status, load.calls) == ({"n": 1}, FRESH, 1)
    # kept in Redis for ttl + stale grace (2 x ttl), under exactly the key asked for
    assert 1_190_000 < client.pttl(prefix + "user_portfolio:u1") <= 1_200_000


def test_stale_value_served_at_once_and_refreshed_exactly_once(
    client: redis.Redis, prefix: str, clock: Any
) -> None:
    # Two Cache objects with their own clients stand for two web processes sharing Redis.
    other_client = make_redis(get_settings().redis_url)
    caches = [Cache(client, key_prefix=prefix, clock=clock), Cache(other_client, key_prefix=prefix, clock=clock)]
    caches[0].get_or_load("forecast:u1", Loader("old"), ttl=60)
    clock.advance(61)  # past the fresh window, inside the stale grace

    # The refresh takes 2 s: a hit that waited for it would take that long, one served at once takes far less
    # even on a loaded machine.
    slow = Loader("new", delay=2.0)
    started = time.perf_counter()
    results = run_concurrently(20, lambda i: caches[i % 2].get_or_load_result("forecast:u1", slow, ttl=60))
    elapsed = time.perf_counter() - started
    assert {(r.value, r.status) for r in results} == {("old", STALE)}
    assert elapsed < 1.5, f"stale hits waited for the refresh ({elapsed:.3f}s)"

    assert all(c.drain(5) for c in caches)
    assert slow.calls == 1, "exactly one background refresh across both processes"
    assert sum(c.background_refreshes for c in caches) == 1
    after = caches[1].get_or_load_result("forecast:u1", slow, ttl=60)
    assert (after.value, after.status, slow.calls) == ("new", FRESH, 1)
    assert client.get(prefix + "refresh:forecast:u1") is None  # the lock was released
    other_client.close()


def test_thundering_herd_on_a_miss_loads_once(client: redis.Redis, prefix: str, clock: Any) -> None:
    other_client = make_redis(get_settings().redis_url)
    caches = [Cache(client, key_prefix=prefix, clock=clock), Cache(other_client, key_prefix=prefix, clock=clock)]
    slow = Loader({"portfolio": 42}, delay=0.3)
    results = run_concurrently(20, lambda i: caches[i % 2].get_or_load_result("user_portfolio:u2", slow, ttl=60))
    assert slow.calls == 1
    assert {r.status for r in results} == {MISS} and all(r.value == {"portfolio": 42} for r in results)
    other_client.close()


def test_invalidate(cache: Cache) -> None:
    load = Loader("v1")
    cache.get_or_load("user_portfolio:u3", load, ttl=600)
    assert cache.invalidate("user_portfolio:u3", "user_analytics:u3") is True
    load.value = "v2"
    result = cache.get_or_load_result("user_portfolio:u3", load, ttl=600)
    assert (result.value, result.status, load.calls) == ("v2", MISS, 2)


def _load_held_open(cache: Cache, key: str, value: str) -> Any:
    """A reader whose load of `key` has begun and waits; calling the result lets it finish (and try to store)."""
    in_loader, release = threading.Event(), threading.Event()

    def old_snapshot() -> str:
        in_loader.set()
        release.wait(5)
        return value

    reader = threading.Thread(target=lambda: cache.get_or_load(key, old_snapshot, ttl=600))
    reader.start()
    assert in_loader.wait(5)

    def finish() -> None:
        release.set()
        reader.join(5)

    return finish


def test_a_load_that_began_before_an_invalidation_is_not_stored(cache: Cache) -> None:
    # The reader loads the old portfolio, the consumer commits + invalidates, then the reader would store:
    # the old value must not be pinned for the whole TTL.
    finish = _load_held_open(cache, "user_portfolio:u4", "before-the-event")
    cache.invalidate("user_portfolio:u4")
    finish()
    result = cache.get_or_load_result("user_portfolio:u4", Loader("after-the-event"), ttl=600)
    assert (result.value, result.status) == ("after-the-event", MISS)


def test_a_write_through_with_the_generation_it_read_is_a_fresh_hit_for_the_next_reader(cache: Cache) -> None:
    gens = cache.generations(["user_portfolio:u5", "user_analytics:u5"])
    assert gens == {"user_portfolio:u5": "", "user_analytics:u5": ""}
    cache.get_or_load("user_analytics:u5", Loader("old"), ttl=600)
    assert cache.invalidate("user_portfolio:u5", "user_analytics:u5", strict=True,
                            fresh={"user_portfolio:u5": Fresh({"n": 2}, 600, gens["user_portfolio:u5"])})
    never = Loader("loaded")
    hit = cache.get_or_load_result("user_portfolio:u5", never, ttl=600)
    assert (hit.value, hit.status, never.calls) == ({"n": 2}, FRESH, 0)
    dropped = cache.get_or_load_result("user_analytics:u5", never, ttl=600)  # not in `fresh`: invalidated
    assert (dropped.value, dropped.status) == ("loaded", MISS)
    # The write bumped the generation like an invalidation: a later writer must read it anew.
    assert cache.generations(["user_portfolio:u5"]) != gens


def test_a_write_through_behind_another_writer_drops_the_key_and_a_load_begun_before_it_cannot_store(
    cache: Cache,
) -> None:
    gen = cache.generations(["user_portfolio:u6"])["user_portfolio:u6"]
    finish = _load_held_open(cache, "user_portfolio:u6", "before-both")
    cache.invalidate("user_portfolio:u6", strict=True)  # another writer, after our read of the generation
    cache.invalidate("user_portfolio:u6", strict=True, fresh={"user_portfolio:u6": Fresh("ours", 600, gen)})
    finish()
    result = cache.get_or_load_result("user_portfolio:u6", Loader("from-the-rows"), ttl=600)
    assert (result.value, result.status) == ("from-the-rows", MISS)


def test_hit_rate_counters(client: redis.Redis, prefix: str, clock: Any) -> None:
    cache = Cache(client, key_prefix=prefix, clock=clock)
    assert cache.hit_rate() is None  # no traffic yet
    load = Loader(1)
    cache.get_or_load("forecast:u5", load, ttl=10)  # miss
    cache.get_or_load("forecast:u5", load, ttl=10)  # hit
    cache.get_or_load("forecast:u5", load, ttl=10)  # hit
    clock.advance(11)
    cache.get_or_load("forecast:u5", load, ttl=10)  # stale hit
    cache.drain(5)
    stats = cache.stats()
    assert stats is not None and (stats.hits, stats.stale_hits, stats.misses) == (2, 1, 1)
    assert cache.hit_rate() == 0.75
    # counted in Redis, so another process computes the same rate
    assert Cache(client, key_prefix=prefix).hit_rate() == 0.75
    assert client.get(prefix + "stats:cache:hits") == "2"


def test_counts_reach_redis_at_most_a_second_late_in_one_round_trip(client: redis.Redis, prefix: str,
                                                                     clock: Any) -> None:
    web = Cache(client, key_prefix=prefix, clock=clock)
    other = Cache(client, key_prefix=prefix)  # another process: it sees only what reached Redis
    load = Loader(1)
    for _ in range(3):
        web.get_or_load("forecast:u9", load, ttl=600)  # a miss, then two hits
    assert other.stats() is not None and other.stats().misses == 0  # not sent yet: the reads paid no INCR
    clock.advance(COUNTS_EVERY_SECONDS)
    web.get_or_load("forecast:u9", load, ttl=600)  # the next read after a second sends all four
    assert (other.stats().hits, other.stats().misses) == (3, 1)


def test_failed_background_refresh_keeps_serving_the_stale_value(cache: Cache, clock: Any) -> None:
    cache.get_or_load("forecast:u6", Loader("old"), ttl=10)
    clock.advance(11)

    def broken() -> str:
        raise RuntimeError("database is down")

    assert cache.get_or_load_result("forecast:u6", broken, ttl=10).status == STALE
    assert cache.drain(5)
    assert cache.get_or_load_result("forecast:u6", Loader("new"), ttl=10).value == "old"  # still stale, retried
    assert cache.drain(5)
    assert cache.get_or_load_result("forecast:u6", Loader("newer"), ttl=10).value == "new"


def test_loader_error_on_a_miss_propagates(cache: Cache) -> None:
    def broken() -> str:
        raise LookupError("no network snapshot")

    with pytest.raises(LookupError):
        cache.get_or_load("forecast:u7", broken, ttl=10)
    assert cache.get_or_load("forecast:u7", Loader("ok"), ttl=10) == "ok"  # the lock was released


class Plan(Enum):
    FREE = "free"


@dataclass(frozen=True)
class Row:
    day: date
    amount: Decimal


def test_json_round_trip_types_are_the_same_on_miss_and_hit(cache: Cache) -> None:
    uid = uuid.UUID("7d1c1f8e-2f5b-4b8e-9a53-0c6f4b8a1d01")
    value = {
        "as_of": datetime(2025, 1, 15, 9, 30, 1, 250000, tzinfo=timezone.utc),
        "naive": datetime(2025, 1, 15, 9, 30),
        "amount": Decimal("29.1462"),
        "id": uid,
        "plan": Plan.FREE,
        "rows": [Row(date(2025, 1, 15), Decimal("0.5"))],
        "scopes": frozenset({"b", "a"}),
        "pair": (1, 2),
    }
    expected = {
        "as_of": "2025-01-15T09:30:01.250000Z",
        "naive": "2025-01-15T09:30:00Z",
        "amount": 29.1462,
        "id": str(uid),
        "plan": "free",
        "rows": [{"day": "2025-01-15", "amount": 0.5}],
        "scopes": ["a", "b"],
        "pair": [1, 2],
    }
    assert cache.get_or_load("user_analytics:u8", lambda: value, ttl=60) == expected  # miss
    assert cache.get_or_load("user_analytics:u8", lambda: value, ttl=60) == expected  # hit
    with pytest.raises(ValueError):
        cache.get_or_load("user_analytics:u9", lambda: {"x": float("nan")}, ttl=60)
    with pytest.raises(TypeError, match="cannot cache"):
        cache.get_or_load("user_analytics:u9", lambda: {"x": object()}, ttl=60)


def test_redis_down_falls_back_to_the_loader(caplog: pytest.LogCaptureFixture) -> None:
    dead = Cache(make_redis("redis://127.0.0.1:1/0"))
    load = Loader({"when": date(2025, 1, 15)})
    started = time.perf_counter()
    with caplog.at_level("WARNING", logger="app.adapters.cache"):
        first = dead.get_or_load_result("user_portfolio:u1", load, ttl=600)
        second = dead.get_or_load_result("user_portfolio:u1", load, ttl=600)  # breaker open: no Redis attempt
    assert (first.value, first.status, first.stored_at) == ({"when": "2025-01-15"}, BYPASS, None)
    assert second.status == BYPASS and load.calls == 2
    assert dead.invalidate("user_portfolio:u1") is False
    assert dead.hit_rate() is None
    assert dead.redis_errors >= 1
    assert "redis unavailable" in caplog.text
    assert time.perf_counter() - started < 2
