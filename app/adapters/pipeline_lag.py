"""The page consumer's pipeline lag, through Redis: the worker writes it, every web process reads it.

One key, KEY, holding milliseconds with a short lifetime (TTL_MS). The worker writes only what is worth saying:
a lag of at least FLOOR_MS, or the first lag under it after one over it (so the web stops refusing at once rather
than when the key expires), and at most every EVERY_S. A worker that stops, or a bus that falls quiet, leaves
no stale figure behind: the key expires and the web refuses nothing (app/domain/freshness.py).

Each web process reads the key at most every EVERY_S, on its event loop, without making a request wait: a
request uses the figure in hand and a read that is due goes on in the background. A figure read longer ago than
the key lives is dropped when the next read starts (after a quiet spell the key has expired since, and the write
that finds it must not be refused for a lag long gone). Redis unreachable reads as no lag known: the guard fails
open, as the rate limiter does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import redis

from app.adapters.redis_client import async_redis_like, get_redis

log = logging.getLogger(__name__)

KEY = "hashinsight:pipeline:lag_ms"
TTL_MS = 1500
FLOOR_MS = 250.0
EVERY_S = 0.25


class LagPublisher:
    def __init__(self, client: redis.Redis, *, clock: Callable[[], float] = time.monotonic,
                 every_s: float = EVERY_S, floor_ms: float = FLOOR_MS, ttl_ms: int = TTL_MS) -> None:
        self._redis = client
        self._clock = clock
        self._every = every_s
        self._floor = floor_ms
        self._ttl = ttl_ms
        self._last_at = float("-inf")
        self._last_ms = 0.0

    def observe(self, lag_ms: float | None) -> bool:
        """A committed batch's lag (None: nothing in it counts); True when it was written."""
        if lag_ms is None or (lag_ms < self._floor and self._last_ms < self._floor):
            return False
        now = self._clock()
        if now - self._last_at < self._every:
            return False
        try:
            self._redis.set(KEY, f"{lag_ms:.0f}", px=self._ttl)
        except redis.RedisError as exc:  # the batch is committed; the figure is only advice to the web
            log.warning("pipeline lag not published: %s", exc)
            return False
        self._last_at, self._last_ms = now, lag_ms
        return True


class LagReader:
    def __init__(self, client: redis.Redis | None = None, *, clock: Callable[[], float] = time.monotonic,
                 every_s: float = EVERY_S, ttl_ms: int = TTL_MS) -> None:
        self._client = client
        self._clock = clock
        self._every = every_s
        self._ttl_s = ttl_ms / 1000
        self._read_at = float("-inf")
        self._lag_ms: float | None = None
        self._reading: asyncio.Task[None] | None = None

    def lag_ms(self) -> float | None:
        """The figure in hand (None: none known); starts a read in the background when one is due. Call it on
        the event loop."""
        loop = asyncio.get_running_loop()
        reading = self._reading
        if reading is not None and reading.get_loop() is not loop:  # a read begun on a loop since closed
            reading = None
        now = self._clock()
        if reading is None and now - self._read_at >= self._every:
            if now - self._read_at > self._ttl_s:
                self._lag_ms = None
            self._read_at = now
            self._reading = loop.create_task(self._read())
        return self._lag_ms

    async def _read(self) -> None:
        try:
            raw = await async_redis_like(self._client or get_redis()).execute("GET", KEY)
            self._lag_ms = float(raw) if raw is not None else None
        except (redis.RedisError, OSError, ValueError):
            self._lag_ms = None
        finally:
            self._reading = None
