"""The analytics page's plan and upcoming-maintenance panel (templates/_plan_and_maintenance.html).

Its own module and partial template, so the page's other parts can change without touching it. The plan is
the caller's own (always shown); upcoming maintenance windows are ops:read data, shown with that scope only,
as the forecast is shown with intel:read only.
"""

from __future__ import annotations

from typing import Any

from app.adapters.db import api_engine
from app.adapters.tokens import Principal
from app.service_layer import billing, ops
from app.service_layer.read_models import read_transaction

OPS_SCOPE = "ops:read"
UPCOMING_LIMIT = 10


def panel(principal: Principal) -> dict[str, Any]:
    """{"plan": {...}, "maintenance": [windows] or None without ops:read, "version": changes with either}."""
    with read_transaction(api_engine(), principal.tenant_id) as conn:
        plan = billing.current_plan(conn, principal.user_id)
        windows = (ops.upcoming_windows(conn, principal.user_id, UPCOMING_LIMIT)
                   if principal.has_scopes([OPS_SCOPE]) else None)
    version = f"{plan['plan']}:{','.join(w['id'] for w in windows or [])}"
    return {"plan": plan, "maintenance": windows, "version": version}
