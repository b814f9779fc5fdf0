"""Who is calling and which request this is, for handlers anywhere in a request.

    from app.entrypoints.http import context

    principal = context.current_principal()   # Principal(user_id, tenant_id, scopes, token_id); 401 if none
    meta = context.request_meta()              # RequestMeta(request_id, trace_id, source_ip, idempotency_key)
    caller = context.current_caller()          # both, as the service layer's writes.Caller

- The principal comes from Connexion's `context["token_info"]` (what auth.bearer_info / cookie_info
  returned), so it exists on every operation with `security` once Connexion has checked the token and
  scopes. By then the admission middleware (app/entrypoints/middleware.py) has also provisioned the
  token's user and tenant just in time (service_layer/users.py) and applied the rate limit, so a handler
  can write rows that reference users(tenant_id, id) at once.
- RequestMeta (request_meta.py) is set by the outermost middleware for every request.
- The trace: every handler runs inside a server span (app/entrypoints/json_lane.py opens it for the JSON
  operations, the Flask instrumentation of app/entrypoints/observability.py for the rest) that continues the
  request's `traceparent` header or starts a new trace. A write records that span's trace id (audit row,
  outbox row) and its traceparent (outbox row -> Kafka header -> consumer spans).

Imports go one way only: auth -> web.login -> problems -> request_meta, and context -> problems / principal;
nothing here is imported back by them.
"""

from __future__ import annotations

from typing import Any

from app.adapters import tracing
from app.adapters.tokens import Principal
from app.entrypoints.http.principal import principal_from_token_info
from app.entrypoints.http.problems import ApiProblem
from app.entrypoints.http.request_meta import (
    REQUEST_ID_HEADER,
    RequestMeta,
    meta_from_scope,
    request_meta,
    request_meta_or_none,
    reset_request_meta,
    set_request_meta,
)
from app.service_layer.writes import Caller

__all__ = [
    "REQUEST_ID_HEADER", "RequestMeta", "current_caller", "current_principal", "current_principal_or_none",
    "meta_from_scope", "request_meta", "request_meta_or_none", "reset_request_meta", "set_request_meta",
    "token_info_or_none",
]


def token_info_or_none() -> dict[str, Any] | None:
    """Connexion's token_info of the current operation, or None (public operation, or no request)."""
    try:
        from connexion.context import context as connexion_context

        info = connexion_context.get("token_info")
    except (LookupError, RuntimeError):  # outside an operation
        return None
    return info if isinstance(info, dict) else None


def current_principal_or_none() -> Principal | None:
    info = token_info_or_none()
    return principal_from_token_info(info) if info else None


def current_principal() -> Principal:
    """The authenticated caller. A handler of a secured operation always has one; otherwise 401."""
    principal = current_principal_or_none()
    if principal is None:
        raise ApiProblem(401, "No authorization token provided")
    return principal


def current_caller() -> Caller:
    """The principal plus the request facts a write records (trace, audit row, idempotency)."""
    meta = request_meta()
    return Caller(
        principal=current_principal(),
        request_id=meta.request_id,
        # The active span's trace when there is one (the same id as an incoming traceparent's).
        trace_id=tracing.current_trace_id() or meta.trace_id,
        source_ip=meta.source_ip,
        idempotency_key=meta.idempotency_key,
        traceparent=tracing.current_traceparent(),
    )
