"""The analytics page's plan and upcoming-maintenance panel (templates/_plan_and_maintenance.html).

Its own module and partial template, so the page's other parts can change without touching it. The plan is
the caller's own (always shown); upcoming maintenance windows are ops:read data, shown with that scope only,
as the forecast is shown with intel:read only. Both come from the page context
(app/service_layer/page_context.py).
"""

from __future__ import annotations

from typing import Any

from app.adapters.tokens import Principal

OPS_SCOPE = "ops:read"


def panel(principal: Principal, context: dict[str, Any]) -> dict[str, Any]:
    """{"plan": {...}, "maintenance": [windows] or None without ops:read, "version": changes with either}."""
    windows = context["maintenance"] if principal.has_scopes([OPS_SCOPE]) else None
    version = f"{context['plan']['plan']}:{','.join(w['id'] for w in windows or [])}"
    return {"plan": context["plan"], "maintenance": windows, "version": version}
