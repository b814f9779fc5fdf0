"""Handlers of the `billing` tag: PUT /api/subscription (operationId change_subscription)."""

from __future__ import annotations

from typing import Any

from app.entrypoints.http import context
from app.entrypoints.http.responses import HandlerResult, outcome
from app.service_layer import billing


def change_subscription(body: dict[str, Any]) -> HandlerResult:
    return outcome(billing.change_plan(context.current_caller(), body))
