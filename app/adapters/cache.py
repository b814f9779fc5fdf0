"""Stale-while-revalidate cache on Redis, shared by every web process.

Keys (house conventions): user_portfolio:{uid}, user_analytics:{uid}, forecast:{uid},
ops_schedule:{uid}:{yyyymmdd}; TTLs: portfolio and analytics 600 s, forecast and ops schedule 1800 s.
Support keys: refresh:{key} (single-flight lock), gen:{key} (invalidation generation),
stats:cache:{hits,stale_hits,misses} (counters for /api/health's cache_hit_rate; each process adds its counts
at most once a second, in one round trip, so a read does not pay a Redis call for its statistics).

How get_or_load(key, loader, ttl) behaves:

- The Redis value is JSON {"v": value, "stored_at": t, "fresh_until": t + ttl}, kept in Redis for
  ttl + stale_grace (default 2 x ttl) so that a stale value is still there to serve.
- fresh hit: return it. stale hit: return it at once and refresh in the background, once: within a process
  one thread per key, across processes whoever wins `SET refresh:{key} NX PX` (short TTL). miss: load now,
  single-flight too (threads of a process share one load; other processes wait briefly for the lock
  holder's value, then load themselves rather than wait forever).
- invalidate(*keys) deletes the value and bumps gen:{key}. A write is stored only if gen:{key} is still what
  it was when its load began (checked atomically in Lua), so a load that read the database before a change
  can never put the pre-change value back after the consumer invalidated it. Without this, a page polled
  right after POST /api/miners could pin the old portfolio for the whole TTL.
- invalidate(..., fresh={key: Fresh(value, ttl, gen)}) writes through instead: a consumer that has just
  committed the new figures stores them, so the page it notifies reads a hit rather than loading from the
  database. The same rule holds: the value is stored only if gen:{key} is still the `gen` the consumer read
  (`generations()`) before it read the data; otherwise it is dropped as invalidate() would. Either way the
  generation is bumped, so a load that began before the change still cannot store.
- Redis down (connection/timeout errors): the loader is called directly, its value returned, the error
  logged, nothing raised; a CircuitBreaker skips Redis for a moment after a failure.

Values round-trip through JSON, and a miss returns the round-tripped value too, so callers see the same
types whether or not the value came from Redis: dict, list, str, int, float, bool, None. On the way in,
Decimal becomes a float; datetime an ISO-8601 string in UTC with "Z" (naive datetimes are taken as UTC);
date "YYYY-MM-DD"; UUID a string; Enum its value; set/frozenset/tuple a list; a dataclass or a pydantic
model a dict. They come back as those JSON forms (no automatic re-parsing). NaN/Infinity are refused.

Loaders run in a background thread on stale hits, so they must be self-contained: open their own database
connection or unit of work, not borrow the request's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import redis

from app.adapters.redis_client import REDIS_DOWN_ERRORS, CircuitBreaker, async_redis_like, get_redis

log = logging.getLogger(__name__)

TTL_PORTFOLIO = 600
TTL_ANALYTICS = 600
TTL_FORECAST = 1800
TTL_OPS_SCHEDULE = 1800

FRESH, STALE, MISS, BYPASS = "fresh", "stale", "miss", "bypass"
_GEN_TTL_SECONDS = 86_400  # outlives any in-flight load by far; an expired gen only makes a load skip storing
_STATS = ("hits", "stale_hits", "misses")
COUNTS_EVERY_SECONDS = 1.0  # how often a process adds its hit/miss counts to the shared counters

# Store only if the generation is unchanged since the load began (KEYS: value, gen; ARGV: gen, payload, px).
_STORE_IF_CURRENT = """
local gen = redis.call('GET', KEYS[2]) or ''
if gen ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""
# Release a lock only if we still hold it (it may have expired and been taken, or been cleared by invalidate).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def portfolio_key(uid: str) -> str:
    return f"user_portfolio:{uid}"


def analytics_key(uid: str) -> str:
    return f"user_analytics:{uid}"


def forecast_key(uid: str) -> str:
    return f"forecast:{uid}"


def ops_schedule_key(uid: str, day: date) -> str:
    if isinstance(day, datetime):  # a datetime is a date too; take its UTC calendar day
        day = (day.astimezone(timezone.utc) if day.tzinfo else day).date()
    return f"ops_schedule:{uid}:{day:%Y%m%d}"


def _json_default(o: Any) -> Any:
    if isinstance(o, datetime):
        o = o.astimezone(timezone.utc).replace(tzinfo=None) if o.tzinfo else o
        return o.isoformat() + "Z"
    if isinstance(o, date):
        return o.isoformat()
    if isinstance(o, Decimal):
        return float(o)
    if isinstance(o, UUID):
        return str(o)
    if isinstance(o, Enum):
        return o.value
    if isinstance(o, (set, frozenset)):
        return sorted(o, key=str)
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if hasattr(o, "model_dump"):  # pydantic v2, without importing it here
        return o.model_dump(mode="json")
    raise TypeError(f"cannot cache a {type(o).__name__}")


def encode(value: Any) -> str:
    return json.dumps(value, default=_json_default, allow_nan=False, separators=(",", ":"))


_TIMES = ',"stored_at":'


def _in_pipeline(pipe: Any, script: str, keys: list[str], args: list[Any]) -> None:
    """A Lua script as one command of a pipeline: EVAL with its text. redis-py's own way (a registered script
    called with client=pipe) costs a SCRIPT EXISTS round trip before every execute; the server caches the
    compiled script by its text."""
    pipe.eval(script, len(keys), *keys, *args)


def _fresh_until(raw: str) -> float:
    """An entry's fresh_until, read from its last fields alone (0 when the text is not an entry). They follow the
    value, so the last occurrence of the marker is theirs whatever text the value holds."""
    at = raw.rfind(_TIMES)
    try:
        return float(json.loads("{" + raw[at + 1:])["fresh_until"]) if at > 0 else 0.0
    except (ValueError, TypeError, KeyError):
        return 0.0


@dataclass(frozen=True)
class CacheResult:
    value: Any
    status: str  # fresh | stale | miss | bypass (Redis unavailable)
    stored_at: float | None  # epoch seconds the value was computed; None when Redis was bypassed
    # The entry's text as Redis holds it, on a hit (None on a miss or a bypass): equal texts are the same value,
    # which is how a reader can recognise an entry it has seen without decoding it (app/entrypoints/web/page.py).
    raw: str | None = field(default=None, compare=False, repr=False)

    @property
    def stale(self) -> bool:
        return self.status == STALE


@dataclass(frozen=True)
class CacheStats:
    hits: int
    stale_hits: int
    misses: int

    @property
    def hit_rate(self) -> float | None:
        """Share of lookups answered from Redis (fresh or stale); None before any traffic."""
        total = self.hits + self.stale_hits + self.misses
        return None if total == 0 else (self.hits + self.stale_hits) / total


# Many invalidations in one call: per key exactly what invalidate() pipelines (drop value and refresh lock, bump
# and keep the generation). KEYS come in triples (value, refresh lock, generation); ARGV[1] is the gen TTL.
# One script call carries 3 arguments per key instead of 3 commands, which is what makes a fan-out's
# 20,000 invalidations cheap for the client.
_INVALIDATE_MANY = """
for i = 1, #KEYS, 3 do
  redis.call('DEL', KEYS[i], KEYS[i + 1])
  redis.call('INCR', KEYS[i + 2])
  redis.call('EXPIRE', KEYS[i + 2], ARGV[1])
end
return #KEYS / 3
"""

# invalidate(..., fresh=...): per key, store the new value if the generation is the one read before the data
# was, else drop it; in both cases drop the refresh lock and bump the generation. KEYS in triples (value,
# refresh lock, generation); ARGV[1] the gen TTL, then per key: expected generation, payload, PX.
_WRITE_THROUGH = """
local written = 0
for i = 1, #KEYS, 3 do
  local a = 2 + (i - 1)
  if (redis.call('GET', KEYS[i + 2]) or '') == ARGV[a] then
    redis.call('SET', KEYS[i], ARGV[a + 1], 'PX', ARGV[a + 2])
    written = written + 1
  else
    redis.call('DEL', KEYS[i])
  end
  redis.call('DEL', KEYS[i + 1])
  redis.call('INCR', KEYS[i + 2])
  redis.call('EXPIRE', KEYS[i + 2], ARGV[1])
end
return written
"""


@dataclass(frozen=True)
class Fresh:
    """A value a writer has just committed, for invalidate(fresh=...): stored only if gen:{key} is still `gen`."""

    value: Any
    ttl: float
    gen: str


class Cache:
    def __init__(
        self,
        client: redis.Redis | None = None,
        *,
        key_prefix: str = "",
        clock: Callable[[], float] = time.time,
        stale_grace: float | None = None,
        refresh_lock_ttl: float = 30.0,
        miss_wait: float = 5.0,
        refresh_workers: int = 4,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        """key_prefix namespaces every key (tests); stale_grace is how long past its TTL a value may still be
        served (None: as long as the TTL itself); miss_wait bounds how long a miss waits for another
        process's load before loading itself."""
        self._r = client if client is not None else get_redis()
        self._prefix = key_prefix
        self._clock = clock
        self._stale_grace = stale_grace
        self._lock_ttl_ms = max(1, int(refresh_lock_ttl * 1000))
        self._miss_wait = miss_wait
        self._workers = refresh_workers
        self._breaker = breaker or CircuitBreaker()
        self._store_script = self._r.register_script(_STORE_IF_CURRENT)
        self._release_script = self._r.register_script(_RELEASE)
        self._mutex = threading.Lock()
        self._refreshing: set[str] = set()
        self._inflight: dict[tuple[str, str], Future[CacheResult]] = {}
        self._pending: set[Future[None]] = set()
        self._executor: ThreadPoolExecutor | None = None  # created on first use: never across a fork
        self.redis_errors = 0  # in-process: Redis cannot count its own outages
        self._unsent: dict[str, int] = {}  # counts not yet added to stats:cache:* (see _count)
        self._sent_at = self._clock()
        self.background_refreshes = 0

    # -- public ------------------------------------------------------------------------------------------

    def get_or_load(self, key: str, loader: Callable[[], Any], ttl: float) -> Any:
        return self.get_or_load_result(key, loader, ttl).value

    def get_or_load_result(self, key: str, loader: Callable[[], Any], ttl: float) -> CacheResult:
        if ttl <= 0:
            raise ValueError("ttl must be > 0")
        full = self._prefix + key
        if not self._breaker.allow():
            return self._bypass(loader)
        try:
            raw, gen = self._r.mget(full, self._gen_key(full))
        except REDIS_DOWN_ERRORS as exc:
            self._down("read", full, exc)
            return self._bypass(loader)
        self._breaker.success()
        entry = self._decode_entry(full, raw)
        gen = gen or ""
        if entry is not None:
            if self._clock() < entry["fresh_until"]:
                self._count("hits")
                return CacheResult(entry["v"], FRESH, entry["stored_at"], raw)
            self._count("stale_hits")
            self._refresh_in_background(full, loader, ttl, gen)
            return CacheResult(entry["v"], STALE, entry["stored_at"], raw)
        self._count("misses")
        return self._load_single_flight(full, loader, ttl, gen)

    async def fresh(self, *keys: str) -> dict[str, CacheResult]:
        """The keys' fresh entries, read on the event loop in one MGET; a stale or missing entry is left out, and
        all are when Redis does not answer. The caller then takes get_or_load_result, which serves stale,
        refreshes and loads (on threads), and meets the outage itself. Not counted: see count_fresh_hits."""
        found: dict[str, CacheResult] = {}
        for key, raw in (await self.fresh_texts(*keys)).items():
            entry = self._decode_entry(self._prefix + key, raw)
            if entry is not None:
                found[key] = CacheResult(entry["v"], FRESH, entry["stored_at"], raw)
        return found

    async def fresh_texts(self, *keys: str) -> dict[str, str]:
        """As fresh(), the entries' texts, undecoded: only their last fields are read, to see that they are fresh."""
        if not keys or not self._breaker.allow():
            return {}
        try:
            raws = await async_redis_like(self._r).mget([self._prefix + key for key in keys])
        except (*REDIS_DOWN_ERRORS, OSError):
            return {}
        now = self._clock()
        return {key: raw for key, raw in zip(keys, raws, strict=True) if raw is not None and now < _fresh_until(raw)}

    def count_fresh_hits(self, n: int) -> None:
        """Count n lookups answered from entries fresh() or fresh_texts() found. Their caller counts them once it
        has answered with them: when it goes on to get_or_load_result instead, that call counts the lookups."""
        due = False
        for _ in range(n):
            due = self._tally("hits") or due
        if due:
            # The shared counters are a blocking round trip: off the event loop.
            asyncio.get_running_loop().run_in_executor(None, self._send_counts)

    def generations(self, keys: list[str]) -> dict[str, str] | None:
        """gen:{key} of each key now ('' when never invalidated), for a later invalidate(fresh=...); None when
        Redis is unreachable (the writer then only invalidates)."""
        if not keys:
            return {}
        try:
            values = self._r.mget([self._gen_key(self._prefix + k) for k in keys])
        except REDIS_DOWN_ERRORS as exc:
            self._down("generations", ",".join(keys), exc)
            return None
        return {k: (v.decode() if isinstance(v, bytes) else v) or "" for k, v in zip(keys, values, strict=True)}

    def invalidate(self, *keys: str, strict: bool = False, publish: Mapping[str, str] | None = None,
                   fresh: Mapping[str, Fresh] | None = None) -> bool:
        """Drop the values (and any refresh lock) and bump their generation. False if Redis was unreachable,
        or with strict=True (the consumers, which retry until it is done) the Redis error itself.

        Keys in `fresh` get their new value instead, if their generation is still the one given (see the
        module's docstring). `publish` (channel -> message) goes out in the same pipelined round trip, after
        the invalidation, so a subscriber woken by it finds the new state (app/adapters/page_events.py)."""
        fresh = fresh or {}
        if not keys and not publish and not fresh:
            return True
        pipe = self._r.pipeline(transaction=False)
        for key in keys:
            if key in fresh:
                continue
            full = self._prefix + key
            pipe.delete(full, self._lock_key(full))
            pipe.incr(self._gen_key(full))
            pipe.expire(self._gen_key(full), _GEN_TTL_SECONDS)
        if fresh:
            triples: list[str] = []
            args: list[Any] = [_GEN_TTL_SECONDS]
            for key, item in fresh.items():
                full = self._prefix + key
                triples += [full, self._lock_key(full), self._gen_key(full)]
                payload, px = self._entry(item.value, item.ttl)
                args += [item.gen, payload, px]
            _in_pipeline(pipe, _WRITE_THROUGH, triples, args)
        for channel, message in (publish or {}).items():
            pipe.publish(self._prefix + channel, message)
        try:
            pipe.execute()
        except REDIS_DOWN_ERRORS as exc:
            if strict:
                raise
            self._down("invalidate", ",".join(keys), exc)
            return False
        return True

    def invalidate_many(self, keys: list[str], publish: Mapping[str, str] | None = None) -> None:
        """invalidate(*keys, strict=True, publish=...) for a large set: one server-side script call, then the
        messages, in one pipelined round trip (raises when Redis is down: the consumers retry)."""
        if not keys and not publish:
            return
        triples: list[str] = []
        for key in keys:
            full = self._prefix + key
            triples += [full, self._lock_key(full), self._gen_key(full)]
        pipe = self._r.pipeline(transaction=False)
        if triples:
            _in_pipeline(pipe, _INVALIDATE_MANY, triples, [_GEN_TTL_SECONDS])
        for channel, message in (publish or {}).items():
            pipe.publish(self._prefix + channel, message)
        pipe.execute()

    def stats(self) -> CacheStats | None:
        """Counters across every process (None when Redis is unreachable); this process's are up to date, the
        others' at most a second behind."""
        self._send_counts()
        try:
            values = self._r.mget([self._stats_key(name) for name in _STATS])
        except REDIS_DOWN_ERRORS as exc:
            self._down("stats", "stats", exc)
            return None
        return CacheStats(*(int(v or 0) for v in values))

    def hit_rate(self) -> float | None:
        """For /api/health's cache_hit_rate: None with no traffic yet or Redis unreachable."""
        stats = self.stats()
        return None if stats is None else stats.hit_rate

    def reset_stats(self) -> None:
        with self._mutex:
            self._unsent = {}
        self._r.delete(*(self._stats_key(name) for name in _STATS))

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait for background refreshes (tests, graceful shutdown). True if none is left running."""
        with self._mutex:
            pending = set(self._pending)
        _, not_done = wait_futures(pending, timeout=timeout)
        return not not_done

    # -- keys --------------------------------------------------------------------------------------------

    def _lock_key(self, full: str) -> str:
        return f"{self._prefix}refresh:{full[len(self._prefix):]}"

    def _gen_key(self, full: str) -> str:
        return f"{self._prefix}gen:{full[len(self._prefix):]}"

    def _stats_key(self, name: str) -> str:
        return f"{self._prefix}stats:cache:{name}"

    # -- internals ---------------------------------------------------------------------------------------

    def _down(self, what: str, key: str, exc: Exception) -> None:
        with self._mutex:
            self.redis_errors += 1
        if self._breaker.allow():  # log once per outage window, not once per request
            log.warning("redis unavailable during cache %s of %s: %s; serving from the loader", what, key, exc)
        self._breaker.failure()

    def _bypass(self, loader: Callable[[], Any]) -> CacheResult:
        # Same JSON round trip as a cached value, so callers never see different types when Redis is down.
        return CacheResult(json.loads(encode(loader())), BYPASS, None)

    def _count(self, name: str) -> None:
        if self._tally(name):
            self._send_counts()

    def _tally(self, name: str) -> bool:
        """Count one lookup in this process; True when the counts are due to be added to the shared ones."""
        with self._mutex:
            self._unsent[name] = self._unsent.get(name, 0) + 1
            return self._clock() - self._sent_at >= COUNTS_EVERY_SECONDS

    def _send_counts(self) -> None:
        with self._mutex:
            counts, self._unsent, self._sent_at = self._unsent, {}, self._clock()
        if not counts:
            return
        try:
            pipe = self._r.pipeline(transaction=False)
            for name, n in counts.items():
                pipe.incrby(self._stats_key(name), n)
            pipe.execute()
        except REDIS_DOWN_ERRORS as exc:  # statistics, not data: dropped rather than queued without bound
            self._down("count", ",".join(counts), exc)

    def _decode_entry(self, full: str, raw: str | None) -> dict[str, Any] | None:
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
            if not isinstance(entry, dict) or "v" not in entry:
                raise ValueError("not a cache entry")
            entry["fresh_until"] = float(entry["fresh_until"])
            return entry
        except (ValueError, TypeError, KeyError):
            log.warning("ignoring a malformed cache entry at %s", full)
            return None

    def _acquire(self, full: str) -> str | None:
        token = secrets.token_hex(8)
        ok = self._r.set(self._lock_key(full), token, nx=True, px=self._lock_ttl_ms)
        return token if ok else None

    def _release(self, full: str, token: str) -> None:
        try:
            self._release_script(keys=[self._lock_key(full)], args=[token])
        except REDIS_DOWN_ERRORS as exc:
            self._down("unlock", full, exc)  # the lock expires by itself

    def _entry(self, value: Any, ttl: float) -> tuple[str, int]:
        """The stored form of a value computed now, and how long Redis keeps it (ms). The value comes first and
        the times last (_fresh_until reads them from the end)."""
        now = self._clock()
        grace = ttl if self._stale_grace is None else self._stale_grace
        return (encode({"v": value, "stored_at": now, "fresh_until": now + ttl}),
                max(1, math.ceil((ttl + grace) * 1000)))

    def _store(self, full: str, value: Any, ttl: float, gen: str) -> tuple[Any, float]:
        payload, px = self._entry(value, ttl)
        try:
            if not self._store_script(keys=[full, self._gen_key(full)], args=[gen, payload, px]):
                log.info("not caching %s: invalidated while it was loading", full)
        except REDIS_DOWN_ERRORS as exc:
            self._down("write", full, exc)
        stored = json.loads(payload)
        return stored["v"], stored["stored_at"]

    def _load_and_store(self, full: str, loader: Callable[[], Any], ttl: float, gen: str) -> CacheResult:
        value, stored_at = self._store(full, loader(), ttl, gen)
        return CacheResult(value, MISS, stored_at)

    def _load_single_flight(self, full: str, loader: Callable[[], Any], ttl: float, gen: str) -> CacheResult:
        # Keyed by generation too: a thread arriving after an invalidation must not join a pre-change load.
        flight = (full, gen)
        with self._mutex:
            future = self._inflight.get(flight)
            leader = future is None
            if leader:
                future = self._inflight[flight] = Future()
        assert future is not None
        if not leader:
            return future.result()
        try:
            result = self._lead_load(full, loader, ttl, gen)
        except BaseException as exc:
            future.set_exception(exc)
            raise
        else:
            future.set_result(result)
            return result
        finally:
            with self._mutex:
                self._inflight.pop(flight, None)

    def _lead_load(self, full: str, loader: Callable[[], Any], ttl: float, gen: str) -> CacheResult:
        try:
            token = self._acquire(full)
        except REDIS_DOWN_ERRORS as exc:
            self._down("lock", full, exc)
            return self._bypass(loader)
        if token is None:
            loaded = self._wait_for_other_process(full)
            if loaded is not None:
                return loaded
            # The holder is slow or gone without a value: load ourselves rather than fail the request.
            return self._load_and_store(full, loader, ttl, gen)
        try:
            return self._load_and_store(full, loader, ttl, gen)
        finally:
            self._release(full, token)

    def _wait_for_other_process(self, full: str) -> CacheResult | None:
        deadline = time.monotonic() + self._miss_wait
        delay = 0.005
        while time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
            try:
                raw, holder = self._r.mget(full, self._lock_key(full))
            except REDIS_DOWN_ERRORS as exc:
                self._down("wait", full, exc)
                return None
            entry = self._decode_entry(full, raw)
            if entry is not None:
                return CacheResult(entry["v"], MISS, entry["stored_at"])
            if holder is None:
                return None
        return None

    def _refresh_in_background(self, full: str, loader: Callable[[], Any], ttl: float, gen: str) -> None:
        with self._mutex:
            if full in self._refreshing:
                return
            self._refreshing.add(full)
        try:
            token = self._acquire(full)
        except REDIS_DOWN_ERRORS as exc:
            self._down("lock", full, exc)
            token = None
        if token is None:  # another process is on it (or Redis is gone): keep serving the stale value
            with self._mutex:
                self._refreshing.discard(full)
            return
        with self._mutex:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="cache-refresh")
            self.background_refreshes += 1
            future = self._executor.submit(self._refresh, full, loader, ttl, gen, token)
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self._mutex:
            self._pending.discard(future)

    def _refresh(self, full: str, loader: Callable[[], Any], ttl: float, gen: str, token: str) -> None:
        try:
            self._store(full, loader(), ttl, gen)
        except Exception:
            # The stale value keeps being served until it expires; the next stale hit tries again.
            log.exception("background refresh of %s failed", full)
        finally:
            self._release(full, token)
            with self._mutex:
                self._refreshing.discard(full)


_shared: Cache | None = None
_shared_lock = threading.Lock()


INVALIDATE_CHUNK = 2000




def get_cache() -> Cache:
    """The process-wide cache on settings.redis_url."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Cache()
        return _shared
