"""Just-in-time provisioning of a token's user and tenant, and the user's rate plan.

A valid token works at once (house convention): the first request of a (tenant, user) pair inserts the
user row; docs/database.md prescribes how, because of Row-Level Security:

    SET LOCAL app.tenant_id = <token tenant>
    INSERT INTO users (id, tenant_id) VALUES (<sub>, <tenant>) ON CONFLICT DO NOTHING
    SELECT ... FROM users WHERE id = <sub>          -- RLS: only rows of the token's tenant are visible

`users.id` is globally unique, so when the same `sub` already exists in another tenant the INSERT does
nothing and the SELECT sees no row: that token is refused (TenantMismatch -> 403). `ON CONFLICT DO UPDATE`
would raise an RLS error on the invisible row instead, hence DO NOTHING. It names no conflict target on
purpose: `users` has a second unique index, `(tenant_id, id)`, which the composite foreign keys need, and
with `ON CONFLICT (id)` two processes provisioning the same new user at once could both pass the check on
`id` and the later one fail on the other index.

Both answers are cached in-process: a provisioned pair is remembered for the life of the process (one DB
round trip per user per process), the plan for at most PLAN_TTL_SECONDS (each entry a random 75-100 % of it,
app/adapters/cache_lifetime.py, so plans cached together are not read again together). A plan change
(PUT /api/subscription) reaches every web process within a second: the process that served it drops its
cached plan at once, and every process listens on Redis for the change (app/adapters/plan_events.py,
published by the API and by the portfolio consumer on crm.subscription_changed) and drops it too; the TTL is
only the fallback for a listener that was disconnected. The plan lookup rides along with the provisioning
statement on first use, so a new user costs one round trip, not two. Caches are bounded so a flood of
distinct tokens cannot grow memory without limit.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, text

from app.adapters import cache_lifetime, plan_events
from app.adapters.db import api_engine
from app.adapters.rate_limit import RatePlan, plan_for
from app.adapters.tokens import Principal

PLAN_TTL_SECONDS = 60.0
MAX_CACHED_USERS = 100_000


class TenantMismatch(Exception):
    """The token's user id already belongs to another tenant."""

    def __init__(self, user_id: str, tenant_id: str) -> None:
        super().__init__(f"user {user_id!r} does not belong to tenant {tenant_id!r}")
        self.user_id = user_id
        self.tenant_id = tenant_id


_PROVISION_SQL = text(
    """
    SELECT set_config('app.tenant_id', :tenant_id, true);
    INSERT INTO users (id, tenant_id) VALUES (:user_id, :tenant_id) ON CONFLICT DO NOTHING;
    SELECT u.id, s.plan, s.requests_per_minute, s.burst
      FROM users u
      LEFT JOIN user_subscriptions s ON s.tenant_id = u.tenant_id AND s.user_id = u.id
     WHERE u.id = :user_id
    """
)

_PLAN_SQL = text(
    """
    SELECT set_config('app.tenant_id', :tenant_id, true);
    SELECT u.id, s.plan, s.requests_per_minute, s.burst
      FROM users u
      LEFT JOIN user_subscriptions s ON s.tenant_id = u.tenant_id AND s.user_id = u.id
     WHERE u.id = :user_id
    """
)


@dataclass(eq=False)  # identity: directories live in a WeakSet
class UserDirectory:
    """Per-process cache of provisioned users and their plans (thread-safe)."""

    engine_factory: Callable[[], Engine] = api_engine
    plan_ttl: float = PLAN_TTL_SECONDS
    clock: Callable[[], float] = time.monotonic
    listen_for_plan_changes: bool = False  # the production directory listens (get_user_directory)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._provisioned: set[tuple[str, str]] = set()
        self._plans: dict[tuple[str, str], tuple[float, RatePlan]] = {}
        self.db_round_trips = 0  # for tests and metrics
        self.plan_changes_heard = 0
        self._changes = 0  # bumped by every change heard: a plan read while one arrived is not cached
        self._listener: plan_events.PlanListener | None = None
        self._listener_pid: int | None = None
        _directories.add(self)

    def _ensure_listener(self) -> None:
        """Started on first use in each process (after a fork, the parent's thread does not exist here)."""
        if not self.listen_for_plan_changes or self._listener_pid == os.getpid():
            return
        with self._lock:
            if self._listener_pid == os.getpid():
                return
            self._listener_pid = os.getpid()
        self._listener = plan_events.PlanListener(self.plan_changed, self.drop_plans).start()

    def plan_changed(self, tenant_id: str, user_id: str) -> None:
        """A user's plan changed: the next request of theirs reads it again."""
        with self._lock:
            self._plans.pop((tenant_id, user_id), None)
            self.plan_changes_heard += 1
            self._changes += 1

    def drop_plans(self) -> None:
        with self._lock:
            self._plans.clear()
            self._changes += 1

    def ensure(self, principal: Principal) -> RatePlan:
        """Provision the principal's user if this process has not yet, and return its (cached) plan."""
        self._ensure_listener()
        cached = self.cached_plan(principal)
        if cached is not None:
            return cached
        key = (principal.tenant_id, principal.user_id)
        now = self.clock()
        with self._lock:
            provisioned = key in self._provisioned
            changes = self._changes
        plan = self._load(principal, provision=not provisioned)
        with self._lock:
            if len(self._plans) >= MAX_CACHED_USERS:
                self._plans.clear()
            if len(self._provisioned) >= MAX_CACHED_USERS:
                self._provisioned.clear()
            self._provisioned.add(key)
            if changes == self._changes:  # else a change arrived while we read: this plan may predate it
                self._plans[key] = (now + cache_lifetime.lifetime(self.plan_ttl), plan)
        return plan

    def cached_plan(self, principal: Principal) -> RatePlan | None:
        """What `ensure` would answer without the database, or None when it needs it (the admission middleware
        then calls `ensure` on a thread: a blocking read must not hold up the event loop)."""
        key = (principal.tenant_id, principal.user_id)
        with self._lock:
            if not self._ready_here() or key not in self._provisioned:
                return None
            cached = self._plans.get(key)
        return cached[1] if cached is not None and cached[0] > self.clock() else None

    def is_provisioned(self, principal: Principal) -> bool:
        """True when `ensure_provisioned` has nothing left to do in this process."""
        with self._lock:
            return self._ready_here() and (principal.tenant_id, principal.user_id) in self._provisioned

    def _ready_here(self) -> bool:
        # A forked child inherits the caches but not the parent's listener thread: its first call goes to ensure.
        return not self.listen_for_plan_changes or self._listener_pid == os.getpid()

    def ensure_provisioned(self, principal: Principal) -> None:
        """Only the provisioning (for callers that do not rate limit)."""
        key = (principal.tenant_id, principal.user_id)
        with self._lock:
            if key in self._provisioned:
                return
        self.ensure(principal)

    def forget(self, principal: Principal | None = None) -> None:
        """Drop cached state (one user, or everything): tests, and after a plan change in this process."""
        with self._lock:
            if principal is None:
                self._provisioned.clear()
                self._plans.clear()
            else:
                key = (principal.tenant_id, principal.user_id)
                self._provisioned.discard(key)
                self._plans.pop(key, None)

    def _load(self, principal: Principal, *, provision: bool) -> RatePlan:
        params = {"tenant_id": principal.tenant_id, "user_id": principal.user_id}
        with self.engine_factory().connect() as conn, conn.begin():
            # psycopg2 returns the result of the last statement of the batch: one round trip.
            row = conn.execute(_PROVISION_SQL if provision else _PLAN_SQL, params).first()
        self.db_round_trips += 1
        if row is None:
            if not provision:
                # Cached as provisioned but the row is gone (deleted by an admin): provision again.
                return self._load(principal, provision=True)
            raise TenantMismatch(principal.user_id, principal.tenant_id)
        _, plan_name, rpm, burst = row
        return plan_for(plan_name, rpm, burst)


_directories: weakref.WeakSet[UserDirectory] = weakref.WeakSet()


def plan_changed_in_process(tenant_id: str, user_id: str) -> None:
    """Every directory of this process drops the user's cached plan (the process that served the change)."""
    for directory in list(_directories):
        directory.plan_changed(tenant_id, user_id)


_directory: UserDirectory | None = None
_directory_lock = threading.Lock()


def get_user_directory() -> UserDirectory:
    global _directory
    with _directory_lock:
        if _directory is None:
            _directory = UserDirectory(listen_for_plan_changes=True)
        return _directory
