"""application/problem+json (RFC 9457) for every error the API answers.

Two halves:

- Exceptions the service layer and handlers raise: `ApiProblem` and its subclasses (NotFound, Conflict,
  Unprocessable, PayloadTooLarge, TooManyRequests). They are Connexion ProblemExceptions, so they work from
  a handler, a Flask hook or an ASGI middleware alike.
- Error handlers `install(app)` registers on the Connexion app. They render Connexion's own problems (400
  validation, 401/403 security, 415), Starlette/Werkzeug HTTP errors (404 unknown path, 405, 413 body too
  large) and our ApiProblems in ONE shape, adding `instance` (the request path) and `request_id`; any other
  exception becomes a 500 whose body says nothing about the internals, while the traceback is logged with
  the request id so the two can be matched.

The shape is the contract's `Problem` schema (type, title, status, detail, instance, errors[]); extra
members are allowed there, and we add `request_id`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

from app.adapters.transient import is_transient
from app.entrypoints.http import request_meta
from app.service_layer import errors as service_errors

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

# Reason phrases for the statuses we answer (title of about:blank problems, RFC 9457 section 4.2).
TITLES: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}

# Problem types raised from the HTTP layer; the service layer names its own (service_layer/errors.py etc.).
TYPE_TOO_MANY_ITEMS = "urn:hashinsight:problem:too-many-items"
TYPE_BODY_TOO_LARGE = "urn:hashinsight:problem:body-too-large"
TYPE_UNKNOWN_REFERENCE = "urn:hashinsight:problem:unknown-reference"
TYPE_TENANT_MISMATCH = "urn:hashinsight:problem:tenant-mismatch"
TYPE_INTERNAL = "urn:hashinsight:problem:internal"
TYPE_UNAVAILABLE = "urn:hashinsight:problem:dependency-unavailable"
TYPE_OVERLOADED = "urn:hashinsight:problem:overloaded"
TYPE_PIPELINE_BEHIND = "urn:hashinsight:problem:pipeline-behind"


def title_of(status: int) -> str:
    return TITLES.get(status, "Error")


class ApiProblem(ProblemException):
    """A problem our code raises on purpose: status, detail, optional type, field errors and headers."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type: str | None = None,  # noqa: A002 - the RFC's member name
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        title: str | None = None,
    ) -> None:
        ext = {"errors": errors[:1000]} if errors else None
        super().__init__(
            status=status,
            title=title or title_of(status),
            detail=detail,
            type=type or "about:blank",
            headers=headers,
            ext=ext,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.detail!r})"


class BadRequest(ApiProblem):
    def __init__(self, detail: str, **kw: Any) -> None:
        super().__init__(400, detail, **kw)


class Forbidden(ApiProblem):
    def __init__(self, detail: str, **kw: Any) -> None:
        super().__init__(403, detail, **kw)


class NotFound(ApiProblem):
    def __init__(self, detail: str, **kw: Any) -> None:
        super().__init__(404, detail, **kw)


class Conflict(ApiProblem):
    def __init__(self, detail: str, **kw: Any) -> None:
        super().__init__(409, detail, **kw)


class PayloadTooLarge(ApiProblem):
    def __init__(self, detail: str, **kw: Any) -> None:
        kw.setdefault("type", TYPE_TOO_MANY_ITEMS)
        super().__init__(413, detail, **kw)


class Unprocessable(ApiProblem):
    def __init__(self, detail: str, **kw: Any) -> None:
        kw.setdefault("type", TYPE_UNKNOWN_REFERENCE)
        super().__init__(422, detail, **kw)


class TooManyRequests(ApiProblem):
    def __init__(self, detail: str, headers: dict[str, str]) -> None:
        super().__init__(429, detail, headers=headers)


# --- rendering ------------------------------------------------------------------------------------------------


def _clip(value: Any, limit: int) -> str | None:
    # The Problem schema bounds detail (4000) and instance (2000); a huge echoed value must not break it.
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    type: str | None = None,  # noqa: A002
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    ext: dict[str, Any] | None = None,
) -> ConnexionResponse:
    """The problem response; `request_id` is added from the request context when there is one."""
    body: dict[str, Any] = {
        "type": type or "about:blank",
        "title": _clip(title or title_of(status), 200),
        "status": status,
    }
    if detail is not None:
        body["detail"] = _clip(detail, 4000)
    if instance:
        body["instance"] = _clip(instance, 2000)
    if ext:
        body.update({k: v for k, v in ext.items() if k not in body})
    meta = request_meta.request_meta_or_none()
    if meta is not None:
        body.setdefault("request_id", meta.request_id)
    return ConnexionResponse(
        status_code=status,
        mimetype=PROBLEM_JSON,
        content_type=PROBLEM_JSON,
        body=json.dumps(body, default=str),
        headers=dict(headers or {}),
    )


def _instance(request: ConnexionRequest | None) -> str | None:
    try:
        return request.url.path if request is not None else None
    except Exception:  # noqa: BLE001 - a broken scope must not turn an error page into a crash
        return None


def handle_problem(request: ConnexionRequest, exc: ProblemException) -> ConnexionResponse:
    """Connexion's ProblemExceptions (validation 400, 401, 403, 415, our ApiProblems, the 501 stubs)."""
    status = int(exc.status or 500)
    if status >= 500:
        log.error("%s %s -> %s: %s", request.method, _instance(request), status, exc.detail)
    else:
        log.info("%s %s -> %s: %s", request.method, _instance(request), status, exc.detail)
    title = exc.title or title_of(status)
    detail = exc.detail
    if isinstance(detail, (dict, list)):
        detail = json.dumps(detail, default=str)
    return render(
        status,
        title=title,
        detail=detail,
        type=exc.type,
        instance=exc.instance or _instance(request),
        headers=dict(exc.headers or {}),
        ext=exc.ext,
    )


def handle_http_exception(request: ConnexionRequest, exc: HTTPException) -> ConnexionResponse:
    """Starlette HTTPExceptions: unknown path (404), wrong method (405), and Flask/Werkzeug errors re-raised."""
    status = int(exc.status_code)
    # Werkzeug's 404/405 descriptions talk about "the URL you entered"; say what was asked instead.
    if status in (404, 405) or not exc.detail or exc.detail == title_of(status):
        detail = _default_detail(status, request)
    else:
        detail = exc.detail
    log.info("%s %s -> %s: %s", request.method, _instance(request), status, detail)
    return render(status, detail=detail, instance=_instance(request), headers=dict(exc.headers or {}))


def _default_detail(status: int, request: ConnexionRequest) -> str:
    path = _instance(request)
    if status == 404:
        return f"No resource at {path}"
    if status == 405:
        return f"Method {request.method} is not allowed on {path}"
    return title_of(status)


RETRY_AFTER_SECONDS = 2
_STATEMENT_TIMEOUT = "57014"  # query_canceled: statement_timeout (app/adapters/db.py sets it on every engine)


def unavailable_dependency(exc: BaseException) -> str | None:
    """'the database' / 'the cache' when `exc` says a dependency is unreachable or timed out for now."""
    cause = getattr(exc, "orig", None) or exc
    if isinstance(exc, redis.RedisError):
        return "the cache" if is_transient(exc) else None
    if is_transient(exc) or getattr(cause, "pgcode", None) == _STATEMENT_TIMEOUT:
        return "the database"
    return None


def handle_unexpected(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """Anything else: 503 with Retry-After when a dependency is down (the request may be retried, with the same
    Idempotency-Key for a write); otherwise a 500 that names the request id, with the traceback in the log only."""
    meta = request_meta.request_meta_or_none()
    request_id = meta.request_id if meta else "-"
    dependency = unavailable_dependency(exc)
    if dependency is not None:
        log.warning("%s %s -> 503: %s unavailable (%s: %s)", request.method, _instance(request), dependency,
                    type(exc).__name__, str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "")
        return render(
            503,
            detail=f"{dependency.capitalize()} is unavailable right now. Retry in {RETRY_AFTER_SECONDS} s; a write "
                   "retried with the same Idempotency-Key is applied at most once.",
            type=TYPE_UNAVAILABLE,
            instance=_instance(request),
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    log.error(
        "unhandled %s on %s %s (request_id=%s)",
        type(exc).__name__, request.method, _instance(request), request_id, exc_info=exc,
    )
    return render(
        500,
        detail=f"An unexpected error occurred. Quote request id {request_id} when reporting it.",
        type=TYPE_INTERNAL,
        instance=_instance(request),
    )


SERVICE_STATUS: dict[type[service_errors.ServiceError], int] = {
    service_errors.NotFound: 404,
    service_errors.Conflict: 409,
    service_errors.TooManyItems: 413,
    service_errors.Unprocessable: 422,
}


def handle_service_error(request: ConnexionRequest, exc: service_errors.ServiceError) -> ConnexionResponse:
    """The service layer's errors (HTTP-agnostic) as problems."""
    status = next((code for cls, code in SERVICE_STATUS.items() if isinstance(exc, cls)), 400)
    log.info("%s %s -> %s: %s", request.method, _instance(request), status, exc.detail)
    return render(
        status,
        detail=exc.detail,
        type=exc.problem_type,
        instance=_instance(request),
        ext={"errors": exc.errors[:1000]} if exc.errors else None,
    )


def install(app: Any) -> None:
    """Register the handlers on a connexion App (FlaskApp or AsyncApp)."""
    app.add_error_handler(service_errors.ServiceError, handle_service_error)
    app.add_error_handler(ProblemException, handle_problem)
    app.add_error_handler(HTTPException, handle_http_exception)
    app.add_error_handler(Exception, handle_unexpected)
