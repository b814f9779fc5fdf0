"""Handlers of the `miner_models` tag: the global model catalogue."""

from __future__ import annotations

from app.entrypoints.http.responses import HandlerResult, json_body
from app.service_layer import miners


def list_miner_models() -> HandlerResult:
    return json_body(miners.list_models())
