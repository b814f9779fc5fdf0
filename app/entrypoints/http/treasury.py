"""Handlers of the `treasury` tag."""

from __future__ import annotations

from typing import Any

from app.entrypoints.http import context
from app.entrypoints.http.responses import HandlerResult, outcome
from app.service_layer import treasury


def execute_trade(body: dict[str, Any]) -> HandlerResult:
    return outcome(treasury.execute_trade(context.current_caller(), body))


def put_treasury_credentials(body: dict[str, Any]) -> HandlerResult:
    return outcome(treasury.put_credentials(context.current_caller(), body))
