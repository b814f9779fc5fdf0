"""Per-user rate limits by subscription plan, as GCRA in one atomic Redis Lua call.

Plans (docs/domain.md, `subscription_plans` / `user_subscriptions`): each has `requests_per_minute` (the
sustained rate) and `burst` (how many requests may arrive back to back from idle). A user without a
subscription row is on `free`. The caller passes the plan's numbers (from the database); DEFAULT_PLANS
mirrors the seeded reference data.

Algorithm: GCRA (generic cell rate algorithm), the token bucket stated as one timestamp per user. The key
ratelimit:{tenant_id}:{user_id} holds the "theoretical arrival time" (TAT) in microseconds; a request is
allowed when TAT + one interval stays within `burst` intervals of now. One GET + SET inside a Lua script is
atomic, so N concurrent requests can never let more than `burst` through; the clock is Redis' TIME, so app
hosts with skewed clocks still agree. The key expires when the bucket would be full again (no leak).

Plan changes: the key ratelimit:{tenant_id}:{user_id}:capacity keeps the capacity (interval x burst) the TAT
was run up under. When the plan has changed since, the debt (TAT - now) is rescaled to the new capacity before
the request is judged: a user who had used 80 % of the old bucket has used 80 % of the new one. So a
downgrade applies to the very next request (never "after the old window runs out"), and an upgrade never
leaves a user throttled by debt run up on a smaller plan.

Headers (contracts/openapi.yaml): RateLimit-Limit = requests_per_minute, RateLimit-Remaining = requests
that may be sent right now (at most `burst`), RateLimit-Reset = seconds until the bucket is full again,
Retry-After (429 only) = seconds until the next request is allowed (>= 1).

`check` uses the process's shared blocking client; `check_async`, for the web's admission middleware on the
event loop, runs the same script on the event loop's pipelined connection to the same server
(app/adapters/redis_pipeline.py).

RATE_LIMIT_ENABLED=0 (settings.rate_limit_enabled) turns the limiter off: every request is allowed and
Redis is not touched.

Redis unavailable -> fail OPEN: the request is allowed, a warning is logged (once per outage window) and
`fail_open_count` goes up. The limiter protects capacity, not security (authentication and scopes are
checked elsewhere and do not depend on Redis), so refusing all traffic because the limiter's store is down
would turn a cache outage into a full outage. The decision says so (`mode="fail_open"`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import redis

from app.adapters.redis_client import REDIS_DOWN_ERRORS, CircuitBreaker, async_redis_like, get_redis
from app.config import get_settings

log = logging.getLogger(__name__)

ENFORCED, DISABLED, FAIL_OPEN = "enforced", "disabled", "fail_open"

_GCRA = """
-- KEYS[1] TAT key, KEYS[2] the capacity (interval x burst, us) the TAT was run up under
-- ARGV: interval (us per request), burst, cost, now (us; '' = Redis TIME)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now
if ARGV[4] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[4])
end
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then tat = math.max(tonumber(stored), now) end
local capacity = interval * burst
-- A plan change: the debt (tat - now) was run up under another capacity; keep its share of the bucket.
local stored_capacity = tonumber(redis.call('GET', KEYS[2]) or '')
if stored_capacity and stored_capacity ~= capacity and tat > now then
  tat = now + math.floor((tat - now) * capacity / stored_capacity)
end
local new_tat = tat + interval * cost
local allow_at = new_tat - capacity
if now < allow_at then
  -- denied: store nothing, so hammering while limited does not push the window further out
  return {0, math.floor((capacity - (tat - now)) / interval), allow_at - now, tat - now}
end
-- %d, not tostring: Lua prints numbers with 14 significant digits and a microsecond timestamp has 16
local ttl_ms = math.max(1, math.ceil((new_tat - now) / 1000))
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl_ms)
redis.call('SET', KEYS[2], string.format('%d', capacity), 'PX', ttl_ms)
return {1, math.floor((capacity - (new_tat - now)) / interval), 0, new_tat - now}
"""


@dataclass(frozen=True)
class RatePlan:
    name: str
    requests_per_minute: int
    burst: int

    def __post_init__(self) -> None:
        if self.requests_per_minute <= 0 or self.burst <= 0:
            raise ValueError("requests_per_minute and burst must be > 0")


# Mirrors tools/seed.py's PLANS (the subscription_plans rows).
DEFAULT_PLANS: dict[str, RatePlan] = {
    "free": RatePlan("free", 60, 20),
    "pro": RatePlan("pro", 600, 100),
    "enterprise": RatePlan("enterprise", 3000, 500),
}
DEFAULT_PLAN = "free"


def plan_for(name: str | None, requests_per_minute: int | None = None, burst: int | None = None) -> RatePlan:
    """The user's plan: the user_subscriptions numbers when given, else the plan's defaults; no plan is free."""
    base = DEFAULT_PLANS.get(name or DEFAULT_PLAN, DEFAULT_PLANS[DEFAULT_PLAN])
    return RatePlan(name or DEFAULT_PLAN, requests_per_minute or base.requests_per_minute, burst or base.burst)


@dataclass(frozen=True)
class RateLimitDecision:
    allowed: bool
    limit: int  # the plan's requests_per_minute
    remaining: int
    reset_seconds: int
    retry_after_seconds: int  # 0 when allowed
    plan: str
    mode: str = ENFORCED  # enforced | disabled | fail_open

    def headers(self) -> dict[str, str]:
        """RateLimit-* on every limited response, Retry-After on a 429."""
        h = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            h["Retry-After"] = str(self.retry_after_seconds)
        return h

    def detail(self) -> str:
        """The 429 problem's detail, as in the contract's example."""
        return (f"Rate limit of {self.limit} requests per minute (plan {self.plan}) exceeded; "
                f"retry in {self.retry_after_seconds} s")


def rate_limit_key(tenant_id: str, user_id: str) -> str:
    # users are unique per tenant (users PK is (tenant_id, id)), so the tenant is part of the identity
    return f"ratelimit:{tenant_id}:{user_id}"


class RateLimiter:
    def __init__(
        self,
        client: redis.Redis | None = None,
        *,
        enabled: bool | None = None,
        key_prefix: str = "",
        breaker: CircuitBreaker | None = None,
    ) -> None:
        """enabled=None reads RATE_LIMIT_ENABLED (settings.rate_limit_enabled) once, here."""
        self.enabled = get_settings().rate_limit_enabled if enabled is None else enabled
        self._r = client if client is not None else get_redis()
        self._prefix = key_prefix
        self._breaker = breaker or CircuitBreaker()
        self._script = self._r.register_script(_GCRA)
        # One asyncio client per event loop that uses check_async (a client belongs to its loop).
        self._async_scripts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self.fail_open_count = 0

    def check(self, tenant_id: str, user_id: str, plan: RatePlan, *, cost: int = 1,
              now: float | None = None) -> RateLimitDecision:
        """Count one request (or `cost`) against the user's plan. `now` (epoch seconds) is for tests; by
        default Redis' own clock is used."""
        early = self._without_redis(plan, cost)
        if early is not None:
            return early
        try:
            answer = self._script(**self._script_call(tenant_id, user_id, plan, cost, now))
        except REDIS_DOWN_ERRORS as exc:
            return self._fail_open(plan, exc)
        return self._decided(plan, answer)

    async def check_async(self, tenant_id: str, user_id: str, plan: RatePlan, *, cost: int = 1,
                          now: float | None = None) -> RateLimitDecision:
        """`check` for a caller on an event loop: the same script and answers, on an asyncio client."""
        early = self._without_redis(plan, cost)
        if early is not None:
            return early
        try:
            answer = await self._async_script()(**self._script_call(tenant_id, user_id, plan, cost, now))
        except (*REDIS_DOWN_ERRORS, OSError) as exc:
            return self._fail_open(plan, exc)
        return self._decided(plan, answer)

    def _without_redis(self, plan: RatePlan, cost: int) -> RateLimitDecision | None:
        """The decision when Redis is not to be asked (limiter off, breaker open), else None."""
        if not self.enabled:
            return RateLimitDecision(True, plan.requests_per_minute, plan.burst, 0, 0, plan.name, DISABLED)
        if not 1 <= cost <= plan.burst:
            raise ValueError(f"cost must be within 1..burst ({plan.burst})")
        if not self._breaker.allow():
            return self._fail_open(plan, None)
        return None

    def _async_script(self) -> Any:
        loop = asyncio.get_running_loop()
        script = self._async_scripts.get(loop)
        if script is None:
            script = self._async_scripts[loop] = async_redis_like(self._r).register_script(_GCRA)
        return script

    def _script_call(self, tenant_id: str, user_id: str, plan: RatePlan, cost: int,
                     now: float | None) -> dict[str, list[Any]]:
        interval_us = max(1, round(60_000_000 / plan.requests_per_minute))
        now_arg = "" if now is None else str(int(now * 1_000_000))
        key = self._prefix + rate_limit_key(tenant_id, user_id)
        return {"keys": [key, key + ":capacity"], "args": [interval_us, plan.burst, cost, now_arg]}

    def _decided(self, plan: RatePlan, answer: Any) -> RateLimitDecision:
        allowed, remaining, retry_us, reset_us = answer
        self._breaker.success()
        return RateLimitDecision(
            allowed=bool(allowed),
            limit=plan.requests_per_minute,
            remaining=max(0, int(remaining)),
            reset_seconds=math.ceil(int(reset_us) / 1_000_000),
            retry_after_seconds=0 if allowed else max(1, math.ceil(int(retry_us) / 1_000_000)),
            plan=plan.name,
        )

    def _fail_open(self, plan: RatePlan, exc: Exception | None) -> RateLimitDecision:
        with self._lock:
            self.fail_open_count += 1
        if exc is not None:
            if self._breaker.allow():  # once per outage window, not once per request
                log.warning("redis unavailable, rate limiting fails open: %s", exc)
            self._breaker.failure()
        return RateLimitDecision(True, plan.requests_per_minute, plan.burst, 0, 0, plan.name, FAIL_OPEN)


_shared: RateLimiter | None = None
_shared_lock = threading.Lock()


def get_rate_limiter() -> RateLimiter:
    """The process-wide limiter on settings.redis_url, honouring RATE_LIMIT_ENABLED."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = RateLimiter()
        return _shared
