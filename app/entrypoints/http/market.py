"""Handlers of the `market` tag: POST /api/market/snapshots (operationId record_market_snapshot)."""

from __future__ import annotations

from typing import Any

from app.entrypoints.http import context
from app.entrypoints.http.responses import HandlerResult, outcome
from app.service_layer import market


def record_market_snapshot(body: dict[str, Any]) -> HandlerResult:
    return outcome(market.record_snapshot(context.current_caller(), body))
