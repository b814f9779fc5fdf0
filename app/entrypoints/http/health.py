"""GET /api/health (operationId get_health, public): always 200; `status` says ok or degraded."""

from __future__ import annotations

from app.entrypoints.http.responses import HandlerResult, json_body
from app.service_layer.health import check_health


def get_health() -> HandlerResult:
    return json_body(check_health(), 200, {"Cache-Control": "no-store"})
