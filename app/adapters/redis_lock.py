"""Per-user Redis locks for the consumers: owner-token locks with a TTL, extended while the work runs.

A consumer batch holds the locks of all its users at once (`LockSet`). The semantics are those of redis-py's
`Lock` (a random owner token stored in the key with a TTL; only the owner extends or releases it; a crashed
holder's lock expires), but a whole set is taken, extended and released in one round trip each through Lua
scripts: redis-py's `Lock` costs one round trip per key, which at a batch of a hundred users was a
measurable share of a consumer's time.

While a set is held a keeper thread extends it every `ttl / 3`, so a long recalculation (a 10,000-miner fleet,
a market-data fan-out) never outlives its lock. Should the lock be lost anyway (Redis restarted, a pause
longer than the TTL) the work is still safe: the consumer also takes a transaction-scoped PostgreSQL advisory
lock per user (app/adapters/inbox.py), and that one cannot expire while its transaction runs.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import redis

log = logging.getLogger(__name__)

# SET NX PX every key not yet held by anyone; returns 1/0 per key. Keys already ours (a retry) count as taken.
_ACQUIRE = """
local out = {}
for i, key in ipairs(KEYS) do
  local current = redis.call('GET', key)
  if current == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    out[i] = 1
  elseif current then
    out[i] = 0
  else
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    out[i] = 1
  end
end
return out
"""
# Extend only the keys still ours; returns how many were.
_EXTEND = """
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('PEXPIRE', key, ARGV[2]); n = n + 1 end
end
return n
"""
# Delete only the keys still ours: one that expired and was taken by another is left alone.
_RELEASE = """
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key); n = n + 1 end
end
return n
"""


class LockNotAcquired(TimeoutError):
    """Another holder kept a lock past the wait: a transient condition, the caller retries later."""


class LockSet:
    def __init__(self, client: redis.Redis, ttl_ms: int = 10_000, wait_s: float = 10.0) -> None:
        self._client = client
        self._ttl_ms = ttl_ms
        self._wait_s = wait_s
        self._acquire = client.register_script(_ACQUIRE)
        self._extend = client.register_script(_EXTEND)
        self._release = client.register_script(_RELEASE)
        self.lost = 0  # extensions that found a key no longer ours (counted for the metrics and the log)

    @contextmanager
    def hold(self, keys: Sequence[str]) -> Iterator[str]:
        """Hold every key (deduplicated) until the block ends; raises LockNotAcquired after `wait_s`."""
        wanted = sorted(set(keys))
        token = secrets.token_hex(16)
        if not wanted:
            yield token
            return
        self._take(wanted, token)
        stop = threading.Event()
        keeper = threading.Thread(target=self._keep, args=(wanted, token, stop), name="lock-keeper", daemon=True)
        keeper.start()
        try:
            yield token
        finally:
            stop.set()
            keeper.join(1.0)
            try:
                self._release(keys=wanted, args=[token])
            except redis.RedisError as exc:  # they expire by their TTL
                log.warning("releasing %d locks failed (%s); they expire in %d ms", len(wanted), exc, self._ttl_ms)

    def _take(self, keys: list[str], token: str) -> None:
        """All or nothing: a partial set is given back before waiting, so two holders of overlapping sets can
        never each keep a part and wait for the other's (hold-and-wait is how lock sets deadlock)."""
        deadline = time.monotonic() + self._wait_s
        delay = 0.005
        while True:
            got = self._acquire(keys=keys, args=[token, self._ttl_ms])
            if all(got):
                return
            taken = [k for k, ok in zip(keys, got, strict=True) if ok]
            if taken:
                self._release(keys=taken, args=[token])
            if time.monotonic() >= deadline:
                held = [k for k, ok in zip(keys, got, strict=True) if not ok]
                raise LockNotAcquired(f"{held[0]} (and {len(held) - 1} more) still held after {self._wait_s:.1f}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _keep(self, keys: list[str], token: str, stop: threading.Event) -> None:
        while not stop.wait(self._ttl_ms / 3000):
            try:
                kept = self._extend(keys=keys, args=[token, self._ttl_ms])
            except redis.RedisError as exc:
                log.warning("extending %d locks failed: %s", len(keys), exc)
                continue
            if kept < len(keys):
                self.lost += len(keys) - kept
                log.warning("%d of %d locks were no longer held when extended; the database guard still holds",
                            len(keys) - kept, len(keys))


def recalc_lock_key(user_id: str) -> str:
    return f"lock:recalc:{user_id}"
