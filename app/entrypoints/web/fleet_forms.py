"""The page's two small forms: add a miner, change a miner's status (POST /analytics/miners[/{id}/status]).

They take the same service calls as POST /api/miners and PATCH /api/miners/{id}/status (unit of work, outbox
event, audit row, Idempotency-Key), so a change made in the browser travels the whole bus like any other:
outbox -> Debezium -> Kafka -> consumer -> page notification -> the page refreshes its figures.

A browser signed in with the `hi_session` cookie must send the form's CSRF token (web/csrf.py). Success is a
303 back to the page, so the forms work without JavaScript; the page's script submits them with fetch() and
stays where it is, waiting for the stream to say the figures changed. Errors are problem+json.
The Idempotency-Key comes from the header (the script sends a fresh one per submission) or the form's
`idempotency_key` field (rendered fresh with each page), so a double click adds one miner, not two.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import Response, redirect, request

from app.adapters.tokens import Principal
from app.entrypoints.http import context
from app.entrypoints.web import csrf
from app.entrypoints.web.login import COOKIE_NAME, MAIN_PATH
from app.service_layer import miners
from app.service_layer.writes import Caller

WRITE_SCOPE = "miners:write"
NEW_STATUSES = ("active", "idle", "maintenance", "offline", "retired")


@dataclasses.dataclass(frozen=True)
class FormContext:
    """What the page's forms need: may this session write, its CSRF token, a fresh Idempotency-Key."""

    can_write: bool
    csrf_token: str
    idempotency_key: str
    models: list[dict[str, Any]]
    miners: list[dict[str, Any]]
    miners_total: int


def form_context(principal: Principal, context: dict[str, Any], csrf_token: str,
                 idempotency_key: str) -> FormContext:
    """The forms of the page context (app/service_layer/page_context.py), for a session that may write."""
    if not principal.has_scopes([WRITE_SCOPE]):
        return FormContext(False, csrf_token, idempotency_key, [], [], 0)
    return FormContext(True, csrf_token, idempotency_key, context["models"], context["miners"],
                       context["miners_total"])


def _caller(body: dict[str, Any]) -> Caller:
    info = context.token_info_or_none() or {}
    if info.get("via") == "cookie":
        csrf.check(request.cookies.get(COOKIE_NAME, ""), body.get("csrf_token"), request.headers.get("Origin"),
                   request.host_url)
    caller = context.current_caller()
    if caller.idempotency_key is None and body.get("idempotency_key"):
        caller = dataclasses.replace(caller, idempotency_key=body["idempotency_key"])
    return caller


def _back() -> Response:
    response = redirect(MAIN_PATH, code=303)
    response.headers["Cache-Control"] = "no-store"
    response.set_data(b"")
    del response.headers["Content-Type"]  # a bodiless redirect, as the contract declares it
    return response


def _present(body: dict[str, Any], *names: str) -> dict[str, Any]:
    """The form's fields the API body takes; an empty text field means "not given"."""
    return {name: body[name] for name in names if body.get(name) not in (None, "")}


def add_miner(body: dict[str, Any]) -> Response:
    caller = _caller(body)
    miners.create_miner(caller, _present(body, "model_id", "label"))
    return _back()


def change_status(miner_id: str, body: dict[str, Any]) -> Response:
    caller = _caller(body)
    miners.change_status(caller, miner_id.lower(), _present(body, "status", "reason"))
    return _back()
