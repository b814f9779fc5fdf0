"""Handlers of the `ops` tag: maintenance windows and the day's schedule."""

from __future__ import annotations

from datetime import date
from typing import Any

from app.entrypoints.http import context
from app.entrypoints.http.problems import ApiProblem
from app.entrypoints.http.responses import HandlerResult, json_body, outcome
from app.entrypoints.web import views
from app.service_layer import ops


def schedule_maintenance(body: dict[str, Any]) -> HandlerResult:
    return outcome(ops.schedule_maintenance(context.current_caller(), body))


def get_ops_schedule(day: str | None = None) -> HandlerResult:
    try:
        parsed = date.fromisoformat(day) if day else None
    except ValueError:  # the contract's pattern let through e.g. 2025-02-30
        raise ApiProblem(400, f"day {day!r} is not a calendar date (YYYY-MM-DD)") from None
    doc = views.ops_schedule(context.current_principal(), parsed)
    return json_body(doc, 200, {"Cache-Control": "private, no-store", "X-Cache": "stale" if doc["stale"] else "ok"})
