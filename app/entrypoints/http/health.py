"""GET /api/health (operationId get_health): always 200; `status` says ok or degraded.

The token is optional (`security: [{bearerAuth: [ops:read]}, {}]`). Without one, or with one that lacks ops:read,
the caller gets the public summary: status and every figure, but no `reasons`, no dependency details and no
connector task traces, which carry exception text (hosts, user names). A valid ops:read token gets all of it.
"""

from __future__ import annotations

from typing import Any

from app.entrypoints.http.context import token_info_or_none
from app.entrypoints.http.responses import HandlerResult, json_body
from app.service_layer.health import check_health, public_summary

DETAIL_SCOPE = "ops:read"


def get_health() -> HandlerResult:
    health = check_health()
    if not _may_see_details(token_info_or_none()):
        health = public_summary(health)
    return json_body(health, 200, {"Cache-Control": "no-store"})


def _may_see_details(token_info: dict[str, Any] | None) -> bool:
    return bool(token_info) and DETAIL_SCOPE in (token_info.get("scope") or ())
