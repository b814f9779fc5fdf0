"""Which request this is: request id, trace id, client address and Idempotency-Key, in a ContextVar.

A leaf module (it imports nothing of the HTTP layer), so the problem renderer, the middlewares and the
handlers' `context` module can all read it without importing each other.

RequestMeta is set by the outermost middleware for every request, public ones and errors included:
`request_id` is the caller's `X-Request-ID` when it is sane (else 32 new random hex digits) and is echoed on the
response; `trace_id` is the W3C `traceparent` trace id when the header is valid, else a new 32-hex id (the
Flask instrumentation continues the same header, so the request's span has this trace id);
`source_ip` is the ASGI client address (uvicorn resolves X-Forwarded-For only from trusted proxies);
`idempotency_key` is the raw `Idempotency-Key` header (Connexion validates its format per operation).
The WSGI bridge (app/entrypoints/wsgi_bridge.py) copies ContextVars into the Flask worker thread.
"""

from __future__ import annotations

import random
import re
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

REQUEST_ID_HEADER = "X-Request-ID"
# The request id is also left in the ASGI scope's extensions under this name, for the outer layer that writes the
# access line after the ContextVar is reset.
REQUEST_ID_EXTENSION = "hashinsight_request_id"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# traceparent: version-traceid-parentid-flags, lower-case hex; an all-zero trace id is invalid (W3C).
_TRACEPARENT_RE = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


@dataclass(frozen=True)
class RequestMeta:
    request_id: str
    trace_id: str
    source_ip: str | None
    idempotency_key: str | None


_meta: ContextVar[RequestMeta | None] = ContextVar("hashinsight_request_meta", default=None)


def header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            try:
                return value.decode("latin-1").strip()
            except Exception:  # noqa: BLE001 - latin-1 decodes any bytes; belt and braces
                return None
    return None


def new_id() -> str:
    """32 random hex digits, never all zeros (a W3C trace id's form): a request's id, or its trace id when the
    caller sent none. Correlation ids, not secrets: drawn as OpenTelemetry draws its ids, from the process's
    seeded generator; a uuid4 per id (a system call and an object each) cost the web ~1 % of its CPU."""
    return f"{random.getrandbits(128) or 1:032x}"


def meta_from_scope(scope: dict[str, Any]) -> RequestMeta:
    """Build the RequestMeta of an ASGI http scope (pure; the middleware sets it)."""
    headers = scope.get("headers") or []
    incoming = header(headers, b"x-request-id")
    request_id = incoming if incoming and _REQUEST_ID_RE.match(incoming) else new_id()
    trace_id = None
    traceparent = header(headers, b"traceparent")
    if traceparent:
        m = _TRACEPARENT_RE.match(traceparent.lower())
        if m and m.group(1) != "0" * 32:
            trace_id = m.group(1)
    client = scope.get("client")
    key = header(headers, b"idempotency-key")
    return RequestMeta(
        request_id=request_id,
        trace_id=trace_id or new_id(),
        source_ip=client[0] if client else None,
        idempotency_key=key or None,
    )


def set_request_meta(meta: RequestMeta | None) -> Any:
    """Set the current request's meta; returns the ContextVar token for reset()."""
    return _meta.set(meta)


def reset_request_meta(token: Any) -> None:
    _meta.reset(token)


def request_meta_or_none() -> RequestMeta | None:
    return _meta.get()


def request_meta() -> RequestMeta:
    """The current request's meta. Outside a request (a script, a unit test) a fresh one is made up."""
    meta = _meta.get()
    if meta is None:
        meta = RequestMeta(new_id(), new_id(), None, None)
    return meta
