"""Subscriptions: change the caller's plan (PUT /api/subscription) and emit crm.subscription_changed.

The plan's limits come from the plan catalogue (subscription_plans). The user_subscriptions row, the event and
the audit row commit together (run_write). Every web process caches plans in memory (service_layer/users.py);
after the commit the serving process drops the caller's plan at once and announces the change on Redis
(app/adapters/plan_events.py), and the portfolio consumer announces it again when the event arrives, so every
web process follows within a second even if this announcement was lost. The rate limiter rescales what was
used to the new plan's size (app/adapters/rate_limit.py), so a downgrade applies to the next request.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import text

from app.adapters import plan_events
from app.adapters.cache import analytics_key, get_cache
from app.adapters.redis_client import REDIS_DOWN_ERRORS
from app.adapters.tokens import Principal
from app.service_layer.errors import Unprocessable
from app.service_layer.idempotency import Outcome
from app.service_layer.miners import iso
from app.service_layer.unit_of_work import UnitOfWork
from app.service_layer.users import plan_changed_in_process
from app.service_layer.writes import Caller, run_write
from generated.events import CrmSubscriptionChanged

log = logging.getLogger(__name__)
DEFAULT_PLAN = "free"


def change_plan(caller: Caller, body: dict[str, Any]) -> Outcome:
    principal = caller.principal
    plan = body["plan"]

    def work(uow: UnitOfWork) -> Outcome:
        limits = uow.conn.execute(
            text("SELECT requests_per_minute, burst FROM subscription_plans WHERE plan = :p"), {"p": plan}
        ).first()
        if limits is None:
            raise Unprocessable(f"Unknown plan {plan!r}", errors=[{"field": "plan", "message": "unknown plan"}])
        current = uow.conn.execute(
            text("SELECT plan, updated_at FROM user_subscriptions WHERE user_id = :u FOR UPDATE"),
            {"u": principal.user_id},
        ).first()
        previous = current.plan if current is not None else DEFAULT_PLAN
        if current is not None and previous == plan:
            return Outcome(200, {"plan": plan, "requests_per_minute": limits.requests_per_minute,
                                 "burst": limits.burst, "previous_plan": previous, "changed": False,
                                 "updated_at": iso(current.updated_at)})
        updated_at = uow.conn.execute(
            text("""INSERT INTO user_subscriptions (tenant_id, user_id, plan, requests_per_minute, burst)
                    VALUES (:t, :u, :p, :rpm, :burst)
                    ON CONFLICT (tenant_id, user_id) DO UPDATE
                      SET plan = EXCLUDED.plan, requests_per_minute = EXCLUDED.requests_per_minute,
                          burst = EXCLUDED.burst, started_at = now()
                    RETURNING updated_at"""),
            {"t": principal.tenant_id, "u": principal.user_id, "p": plan, "rpm": limits.requests_per_minute,
             "burst": limits.burst},
        ).scalar_one()
        uow.emit(caller.event(
            "crm.subscription_changed",
            CrmSubscriptionChanged(plan=plan, requests_per_minute=limits.requests_per_minute, burst=limits.burst,
                                   previous_plan=previous),
            entity_id=None,
        ))
        uow.audit(caller.audit("subscription.change", "subscription", principal.user_id,
                               {"from": previous, "to": plan, "requests_per_minute": limits.requests_per_minute,
                                "burst": limits.burst}))
        return Outcome(200, {"plan": plan, "requests_per_minute": limits.requests_per_minute, "burst": limits.burst,
                             "previous_plan": previous, "changed": True, "updated_at": iso(updated_at)})

    outcome = run_write(caller, "change_subscription", {}, body, work)
    if outcome.body.get("changed") and not outcome.replayed:
        announce_plan_change(principal)
    return outcome


def announce_plan_change(principal: Principal) -> None:
    """This process forgets the plan now; the others hear it on Redis (the consumer repeats it, and drops the page
    context too)."""
    plan_changed_in_process(principal.tenant_id, principal.user_id)
    get_cache().invalidate(analytics_key(principal.user_id))  # the page shows the plan (page_context)
    try:
        plan_events.publish([(principal.tenant_id, principal.user_id)])
    except REDIS_DOWN_ERRORS as exc:  # the consumer announces it again from the event
        log.warning("announcing a plan change failed (%s); the portfolio consumer will", exc)


def current_plan(conn: Any, user_id: str) -> dict[str, Any]:
    """The caller's plan for the page: the subscription row, else the free plan's limits."""
    row = conn.execute(
        text("""SELECT COALESCE(s.plan, p.plan) AS plan, COALESCE(s.requests_per_minute, p.requests_per_minute) AS rpm,
                       COALESCE(s.burst, p.burst) AS burst
                  FROM subscription_plans p
                  LEFT JOIN user_subscriptions s ON s.user_id = :u
                 WHERE p.plan = COALESCE(s.plan, :free)"""),
        {"u": user_id, "free": DEFAULT_PLAN},
    ).first()
    if row is None:
        return {"plan": DEFAULT_PLAN, "requests_per_minute": None, "burst": None}
    return {"plan": row.plan, "requests_per_minute": row.rpm, "burst": row.burst}
