"""The one Redis client factory (cache, rate limiter, locks) and the health ping.

Redis here is an accelerator, not a source of truth: when it is down the cache falls back to the loader and
the rate limiter fails open. That only helps if a dead Redis *fails fast*, so the client uses short socket
timeouts and a single immediate retry (enough to replace a pooled connection that Redis closed after a
restart) instead of redis-py's default 5 s timeouts with 3 backed-off retries. A CircuitBreaker lets callers
skip Redis entirely for a moment after a failure, so a black-holed host costs one timeout per cooldown rather
than one per request. Callers on an event loop (the web's limiter and fresh reads) share one pipelined
connection per loop instead (app/adapters/redis_pipeline.py), with the same timeouts and the same errors.

Responses are decoded to str (decode_responses=True): every value we store is JSON text or a number.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.adapters.redis_pipeline import PipelinedRedis
from app.config import get_settings

SOCKET_TIMEOUT_SECONDS = 0.5
CONNECT_TIMEOUT_SECONDS = 0.5
HEALTH_CHECK_INTERVAL_SECONDS = 30  # re-PING a connection idle this long before reusing it

# What "Redis is unavailable" looks like to callers. ResponseErrors (a bug, a wrong type) are not in here.
REDIS_DOWN_ERRORS: tuple[type[Exception], ...] = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def make_redis(
    url: str,
    *,
    socket_timeout: float = SOCKET_TIMEOUT_SECONDS,
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
) -> redis.Redis:
    """A new client with its own pool; prefer get_redis() so a process shares one pool."""
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=HEALTH_CHECK_INTERVAL_SECONDS,
        decode_responses=True,
        client_name="hashinsight",
    )


def make_async_redis_like(client: redis.Redis) -> PipelinedRedis:
    """An asyncio client for the server `client` talks to, with the same fail-fast timeouts, for callers on an
    event loop (it belongs to the loop it is first used on): one pipelined connection (redis_pipeline.py)."""
    kw = client.connection_pool.connection_kwargs
    return PipelinedRedis(
        host=kw.get("host", "localhost"), port=kw.get("port", 6379), db=kw.get("db", 0),
        username=kw.get("username"), password=kw.get("password"), client_name=kw.get("client_name", "hashinsight"),
        socket_timeout=kw.get("socket_timeout") or SOCKET_TIMEOUT_SECONDS,
        connect_timeout=kw.get("socket_connect_timeout") or CONNECT_TIMEOUT_SECONDS,
    )


_async_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[int, tuple[redis.Redis, PipelinedRedis]]] = weakref.WeakKeyDictionary()


def async_redis_like(client: redis.Redis) -> PipelinedRedis:
    """The asyncio twin of `client` for the running event loop, shared by every caller on that loop (the limiter
    and the cache's fresh reads pipeline on one connection, not one each)."""
    per_loop = _async_clients.setdefault(asyncio.get_running_loop(), {})
    known = per_loop.get(id(client))
    if known is None or known[0] is not client:  # holding the client keeps its id from being reused
        known = per_loop[id(client)] = (client, make_async_redis_like(client))
    return known[1]


def get_redis(url: str | None = None) -> redis.Redis:
    """The process-wide client for `url` (default settings.redis_url). Thread-safe; redis-py resets the pool
    in a forked child (gunicorn workers), so sharing it across a fork is safe too."""
    url = url or get_settings().redis_url
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = make_redis(url)
        return client


@dataclass(frozen=True)
class RedisHealth:
    ok: bool
    detail: str | None
    latency_ms: float | None


def ping(client: redis.Redis | None = None) -> RedisHealth:
    """For /api/health's dependencies.redis: never raises."""
    client = client or get_redis()
    started = time.perf_counter()
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        return RedisHealth(False, f"{type(exc).__name__}: {exc}"[:500], None)
    return RedisHealth(True, None, round((time.perf_counter() - started) * 1000, 3))


class CircuitBreaker:
    """Open for `cooldown` seconds after a failure: callers skip Redis (and take their fallback) meanwhile.
    After the cooldown the next call tries Redis again; a success closes the breaker."""

    def __init__(self, cooldown: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown = cooldown
        self._clock = clock
        self._open_until = 0.0

    def allow(self) -> bool:
        return self._clock() >= self._open_until

    def failure(self) -> None:
        self._open_until = self._clock() + self.cooldown

    def success(self) -> None:
        self._open_until = 0.0
