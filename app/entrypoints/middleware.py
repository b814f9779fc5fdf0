"""ASGI middlewares the app factory wraps around Connexion's stack.

Order (outermost first; Connexion's own in brackets):

    [ServerErrorMiddleware]
    RequestContextMiddleware     request id / trace id / source ip for everything, X-Request-ID on every
                                 response, request bodies over MAX_BODY_BYTES -> 413, chunked bodies
                                 buffered (bounded) so Connexion sees a Content-Length
    InFlightLimitMiddleware      more than MAX_REQUESTS_IN_FLIGHT requests, or MAX_WRITES_IN_FLIGHT writes, in
                                 progress in this process -> 503 with Retry-After, before any work is spent on
                                 the request
    [ExceptionMiddleware]        every exception below becomes application/problem+json (problems.py)
    [SwaggerUI, Routing, Security]  token and scopes checked -> 401/403
    FreshnessGuardMiddleware     authenticated writes while the bus is behind -> 503 with Retry-After
                                 (app/entrypoints/freshness_guard.py)
    AdmissionMiddleware          authenticated requests only: JIT-provision the user, look up the plan,
                                 rate limit -> 429; RateLimit-* headers on the response
    PageStreamMiddleware         GET /analytics/stream, answered here (app/entrypoints/web/stream.py)
    [RequestValidation, ResponseValidation, Lifespan]
    FreshReadMiddleware          a read whose fresh cache entry answers it, without a thread
                                 (app/entrypoints/fresh_reads.py)
    [Context] -> Flask handler

HttpMetricsMiddleware (app/entrypoints/observability.py) is outside them all: metrics and the access line.

Why admission sits after security and before validation: the limiter needs the verified principal, and
counting a request before its body is parsed means malformed or oversized requests are limited too, while
a 429 costs no JSON parsing. Admission stays on the event loop when it can (the user provisioned and its plan
cached in this process, the limiter asked through an asyncio Redis client); only a database read takes a
thread. Public operations (health, login) carry no token, so they are not limited per
user (they are cheap and unauthenticated; an edge proxy is the place for per-IP limits).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.adapters.rate_limit import RateLimitDecision, RateLimiter
from app.entrypoints.http import context
from app.entrypoints.http.principal import principal_from_token_info, scope_token_info
from app.entrypoints.http.problems import (
    TYPE_BODY_TOO_LARGE,
    TYPE_OVERLOADED,
    TYPE_TENANT_MISMATCH,
    ApiProblem,
    TooManyRequests,
    title_of,
)
from app.entrypoints.http.request_meta import REQUEST_ID_EXTENSION
from app.entrypoints.web.login import LOGIN_PATH
from app.service_layer.users import TenantMismatch, UserDirectory

log = logging.getLogger(__name__)

# 10,000 bulk items of a few hundred bytes each is ~3-4 MB of JSON; 16 MiB leaves room and stops abuse.
MAX_BODY_BYTES = 16 * 1024 * 1024

# Requests one web process works on at once; past it, 503 at once. At ~3 ms of CPU a request that is ~0.2 s of
# work queued on the event loop, so an answer stays prompt under any offered load; without a bound, a web that
# falls behind accepts everything, every request waits seconds, and clients time out instead of being told.
# The event loop's Redis pool has at least as many connections (app/adapters/redis_client.py), so a request in
# progress never waits for one. Health, metrics, the login form and page streams are not counted.
MAX_REQUESTS_IN_FLIGHT = 64
# Of those, writes. A write costs the web about three times a cached read and the rest of the machine several
# times more again (the bus, the consumers); the reads are what shows the page. When the machine cannot keep up,
# writes are refused first and the page goes on answering promptly: without this bound an overloaded web let
# writes fill its places, and a page read could wait (or be refused) for tens of seconds.
MAX_WRITES_IN_FLIGHT = 32
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UNCOUNTED_PATHS = frozenset({"/api/health", "/metrics", LOGIN_PATH, "/analytics/stream"})
OVERLOADED_RETRY_AFTER_SECONDS = 1


class BodyTooLarge(ApiProblem):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body is larger than {limit} bytes", type=TYPE_BODY_TOO_LARGE)


class Overloaded(ApiProblem):
    def __init__(self, limit: int, what: str = "requests") -> None:
        super().__init__(
            503, f"The server is working on its limit of {limit} {what}; retry in "
                 f"{OVERLOADED_RETRY_AFTER_SECONDS} s (a write retried with the same Idempotency-Key is applied "
                 "at most once)",
            type=TYPE_OVERLOADED, headers={"Retry-After": str(OVERLOADED_RETRY_AFTER_SECONDS)},
        )


class InFlightLimitMiddleware:
    """At most `limit` requests in progress in this process, and of them at most `write_limit` writes (see
    MAX_REQUESTS_IN_FLIGHT and MAX_WRITES_IN_FLIGHT); one past either is answered 503 problem+json with
    Retry-After before anything reads its body, its token or the database."""

    def __init__(self, app: ASGIApp, limit: int = MAX_REQUESTS_IN_FLIGHT, write_limit: int = MAX_WRITES_IN_FLIGHT,
                 uncounted: frozenset[str] = UNCOUNTED_PATHS) -> None:
        if limit < 1 or write_limit < 1:
            raise ValueError("the in-flight limits must be at least 1")
        self.app = app
        self.limit = limit
        self.write_limit = min(write_limit, limit)
        self.uncounted = uncounted
        self.in_flight = 0  # one event loop per process: no lock needed
        self.writes_in_flight = 0
        self.shed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.uncounted:
            await self.app(scope, receive, send)
            return
        write = scope["method"] not in READ_METHODS
        if self.in_flight >= self.limit or (write and self.writes_in_flight >= self.write_limit):
            self.shed += 1
            limit, what = (self.write_limit, "writes") if write and self.in_flight < self.limit \
                else (self.limit, "requests")
            await _send_problem(send, Overloaded(limit, what), scope)
            return
        self.in_flight += 1
        self.writes_in_flight += write
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.writes_in_flight -= write


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        meta = context.meta_from_scope(scope)
        token = context.set_request_meta(meta)
        scope.setdefault("extensions", {})[REQUEST_ID_EXTENSION] = meta.request_id
        request_id = meta.request_id.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id))
                message = {**message, "headers": headers}
            await send(message)

        try:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body_bytes:
                # We are outside Connexion's ExceptionMiddleware here, so answer directly.
                await _send_problem(send_with_id, BodyTooLarge(self.max_body_bytes), scope)
                return
            if declared is None and _has_header(scope, b"transfer-encoding"):
                # Connexion treats a body without Content-Length as missing ("RequestBody is required"), so
                # a chunked body is read here (up to the limit) and replayed with its Content-Length.
                body = await self._read_chunked(receive)
                if body is None:
                    await _send_problem(send_with_id, BodyTooLarge(self.max_body_bytes), scope)
                    return
                scope = _with_content_length(scope, len(body))
                receive = _replay(body, receive)
            await self.app(scope, receive, send_with_id)
        finally:
            context.reset_request_meta(token)

    async def _read_chunked(self, receive: Receive) -> bytes | None:
        parts: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break  # client went away; the app will see an empty body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            parts.append(chunk)
            more = message.get("more_body", False)
        return b"".join(parts)


def _has_header(scope: Scope, name: bytes) -> bool:
    return any(k.lower() == name for k, _ in scope.get("headers", []))


def _with_content_length(scope: Scope, length: int) -> Scope:
    drop = (b"transfer-encoding", b"content-length")
    headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in drop]
    headers.append((b"content-length", str(length).encode()))
    return {**scope, "headers": headers}


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # http.disconnect, when it comes

    return replay


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_problem(send: Send, problem: ApiProblem, scope: Scope) -> None:
    meta = context.request_meta_or_none()
    body = {
        "type": problem.type or "about:blank",
        "title": problem.title or title_of(problem.status),
        "status": problem.status,
        "detail": problem.detail,
        "instance": scope.get("path", "")[:2000],
    }
    if meta:
        body["request_id"] = meta.request_id
    payload = json.dumps(body).encode()
    extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (problem.headers or {}).items()]
    await send({
        "type": "http.response.start",
        "status": problem.status,
        "headers": [(b"content-type", b"application/problem+json"), (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"), *extra],
    })
    await send({"type": "http.response.body", "body": payload})


class AdmissionMiddleware:
    """Provisioning and rate limiting of authenticated requests (see the module docstring)."""

    def __init__(self, app: ASGIApp, directory: UserDirectory, limiter: RateLimiter) -> None:
        self.app = app
        self.directory = directory
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token_info = scope_token_info(scope)
        if token_info is None:
            # Public operation, or one whose token is optional and absent (`security: [{...}, {}]`): nothing to
            # provision or limit.
            await self.app(scope, receive, send)
            return
        principal = principal_from_token_info(token_info)
        headers = await self._admit_on_loop(principal)
        if headers is None:
            # The directory must read PostgreSQL (a new user, or a plan to read again), with a blocking client.
            headers = await run_in_threadpool(self._admit, principal)
        if not headers:
            await self.app(scope, receive, send)
            return
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k for k, _ in raw}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + raw}
            await send(message)

        await self.app(scope, receive, send_with_limits)

    async def _admit_on_loop(self, principal: Any) -> dict[str, str] | None:
        """The usual case without a thread: the user is provisioned and its plan cached in this process, and the
        limiter asks Redis on the event loop. None when the directory needs the database."""
        if not self.limiter.enabled:
            return {} if self.directory.is_provisioned(principal) else None
        plan = self.directory.cached_plan(principal)
        if plan is None:
            return None
        return self._limited(await self.limiter.check_async(principal.tenant_id, principal.user_id, plan))

    def _admit(self, principal: Any) -> dict[str, str]:
        """RateLimit-* headers to add (empty when limiting is off); raises 403/429 problems."""
        try:
            if not self.limiter.enabled:
                self.directory.ensure_provisioned(principal)
                return {}
            plan = self.directory.ensure(principal)
        except TenantMismatch as exc:
            log.warning("refused token: %s", exc)
            raise ApiProblem(
                403,
                f"User {principal.user_id} belongs to another tenant than {principal.tenant_id}",
                type=TYPE_TENANT_MISMATCH,
            ) from None
        return self._limited(self.limiter.check(principal.tenant_id, principal.user_id, plan))

    @staticmethod
    def _limited(decision: RateLimitDecision) -> dict[str, str]:
        if not decision.allowed:
            raise TooManyRequests(decision.detail(), headers=decision.headers())
        if decision.mode != "enforced":
            return {}  # fail-open: no numbers we could vouch for
        return decision.headers()
