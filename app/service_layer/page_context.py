"""What the analytics page shows besides the portfolio and the forecast: the plan, upcoming maintenance, and
its forms' data (the model catalogue, the newest miners), cached at user_analytics:{uid}.

One read of the database per change instead of one per page view. The entry is for one portfolio: it records
the portfolio it was loaded with (`as_of`, `last_event_id`), and a page showing another one loads it again. So
the miner list can never be older than the figures beside it: a miner write is followed by its event, the
portfolio consumer's recalculation and a new portfolio. The other changes invalidate the key themselves:

- a plan change: the API after its commit (billing.announce_plan_change) and the portfolio consumer (crm.*);
- a maintenance window: the API after its commit (ops.schedule_maintenance) and the intel consumer (ops.*);
- time: a window that ends leaves "upcoming", so the entry is fresh for PAGE_CONTEXT_TTL_SECONDS only.

The entry holds everything whatever the caller's scopes (it is the user's own data); the page shows each part
only with its scope, as before.
"""

from __future__ import annotations

import json
from typing import Any

from app.adapters.cache import BYPASS, CacheResult, analytics_key, encode, get_cache
from app.adapters.db import api_engine
from app.adapters.tokens import Principal
from app.service_layer import billing, miners, ops
from app.service_layer.read_models import View, read_transaction

PAGE_CONTEXT_TTL_SECONDS: float = 60.0
UPCOMING_LIMIT = 10
MINERS_SHOWN = 12  # the newest miners get a status form on the page; the API lists them all


def portfolio_version(portfolio: dict[str, Any]) -> list[Any]:
    return [portfolio["as_of"], portfolio["last_event_id"]]


def load_page_context(principal: Principal, portfolio: dict[str, Any]) -> dict[str, Any]:
    with read_transaction(api_engine(), principal.tenant_id) as conn:
        plan = billing.current_plan(conn, principal.user_id)
        windows = ops.upcoming_windows(conn, principal.user_id, UPCOMING_LIMIT)
    fleet = miners.list_miners(principal, status=None, model_id=None, limit=MINERS_SHOWN, offset=0)
    return {
        "tenant_id": principal.tenant_id,
        "portfolio": portfolio_version(portfolio),
        "plan": plan,
        "maintenance": windows,
        "models": miners.list_models()["items"],
        "miners": fleet["items"],
        "miners_total": fleet["total"],
    }


def page_context_view(principal: Principal, portfolio: dict[str, Any]) -> View:
    """The page's context for this portfolio, from the cache or the database."""
    cache = get_cache()
    key = analytics_key(principal.user_id)

    def loader() -> dict[str, Any]:
        return load_page_context(principal, portfolio)

    for _ in range(2):
        result = cache.get_or_load_result(key, loader, PAGE_CONTEXT_TTL_SECONDS)
        view = _view_of(result, principal, portfolio)
        if view is not None:
            return view
        cache.invalidate(key)  # another portfolio's (or tenant's) context: load this one
    # Rewritten under us twice (a consumer busy with this user): this view's own load, uncached.
    return View(json.loads(encode(loader())), "derived", BYPASS, None)


def _view_of(result: CacheResult, principal: Principal, portfolio: dict[str, Any]) -> View | None:
    value = result.value
    if (not isinstance(value, dict) or value.get("tenant_id") != principal.tenant_id
            or value.get("portfolio") != portfolio_version(portfolio)):
        return None
    return View(value, "derived", result.status, result.stored_at, result.raw)
