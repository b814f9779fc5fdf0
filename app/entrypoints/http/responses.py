"""Turning service results into Connexion handler return values.

Every operation of the contract also declares application/problem+json (its error responses), so
Connexion cannot infer the content type of a plain dict and answers 500 ("Multiple response content types
are defined"). Handlers therefore return `json_body(...)` / `outcome(...)`, which name application/json.
"""

from __future__ import annotations

import json
from typing import Any

from connexion.jsonifier import Jsonifier

from app.service_layer.idempotency import Outcome

JSON = "application/json"
# Compact JSON (Connexion's Flask default is indent=2), and never NaN/Infinity, which are not JSON. The app's
# handlers and its event-loop answers (app/entrypoints/fresh_reads.py) encode with this one.
JSONIFIER = Jsonifier(json, separators=(",", ":"), allow_nan=False)
HandlerResult = tuple[Any, int, dict[str, str]]


def json_body(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> HandlerResult:
    return body, status, {"Content-Type": JSON, **(headers or {})}


def outcome(result: Outcome) -> HandlerResult:
    """A write's result: Location and, for a replay, `Idempotent-Replayed: true`."""
    return json_body(result.body, result.status, result.response_headers())
