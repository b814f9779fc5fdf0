"""A Redis lock with an owner token: only the holder can release it, and a crashed holder's lock expires."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

# Delete only if the value is still our token: a lock that expired and was taken by another is left alone.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""


class LockNotAcquired(TimeoutError):
    pass


class RedisLock:
    def __init__(self, client: redis.Redis, ttl_ms: int = 30_000, wait_s: float = 10.0) -> None:
        self._client = client
        self._ttl_ms = ttl_ms
        self._wait_s = wait_s
        self._release = client.register_script(_RELEASE)

    @contextmanager
    def hold(self, key: str) -> Iterator[str]:
        token = secrets.token_hex(16)
        deadline = time.monotonic() + self._wait_s
        delay = 0.005
        while not self._client.set(key, token, nx=True, px=self._ttl_ms):
            if time.monotonic() >= deadline:
                raise LockNotAcquired(f"{key} still held after {self._wait_s:.1f}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        try:
            yield token
        finally:
            self._release(keys=[key], args=[token])


def recalc_lock_key(user_id: str) -> str:
    return f"lock:recalc:{user_id}"
