"""Handlers of the `miners` tag (contracts/openapi.yaml): parse -> service -> response.

Connexion has already checked the token, the scopes and the request against the schema; the admission
middleware has provisioned the user and applied the rate limit.
"""

from __future__ import annotations

from typing import Any

from app.entrypoints.http import context
from app.entrypoints.http.responses import HandlerResult, json_body, outcome
from app.service_layer import miners


def create_miner(body: dict[str, Any]) -> HandlerResult:
    return outcome(miners.create_miner(context.current_caller(), body))


def list_miners(
    status: str | None = None, model_id: str | None = None, limit: int = 50, offset: int = 0
) -> HandlerResult:
    return json_body(
        miners.list_miners(context.current_principal(), status=status, model_id=model_id, limit=limit, offset=offset)
    )


def bulk_import_miners(body: dict[str, Any]) -> HandlerResult:
    return outcome(miners.bulk_import(context.current_caller(), body))


def get_miner(id: str) -> HandlerResult:  # noqa: A002 - the contract's path parameter is `id`
    return json_body(miners.get_miner(context.current_principal(), id.lower()))


def change_miner_status(id: str, body: dict[str, Any]) -> HandlerResult:  # noqa: A002
    return outcome(miners.change_status(context.current_caller(), id.lower(), body))


def update_miner(id: str, body: dict[str, Any]) -> HandlerResult:  # noqa: A002
    return outcome(miners.update_miner(context.current_caller(), id.lower(), body))
