"""The Connexion 3 app factory: contracts/openapi.yaml behind our middlewares (JSON operations without Flask).

    from app.entrypoints.app import create_app
    app = create_app()          # a connexion.FlaskApp; ASGI callable; app.app is the Flask app

What it sets up (see app/entrypoints/middleware.py for the order of the layers):

- the contract through `generated.routes.add_api` (spec at /api/openapi.json, Swagger UI at /api/ui/,
  handlers app.entrypoints.http.<first tag>.<operationId>, 501 stubs, scoped bearer auth);
- strict request validation (`strict_validation=True`: unknown query/form parameters are a 400 too);
- response validation when HASHINSIGHT_VALIDATE_RESPONSES=1 (the tests set it; off by default in
  production because validating every body against the schema costs time on every response, and the
  tests plus schemathesis already prove conformance);
- problem+json for every error (problems.install), request ids, JIT provisioning and rate limits;
- writes refused while the bus is behind (freshness_guard.py);
- request metrics per operation and a trace span per request (observability.py; GET /metrics serves them);
- the JSON operations served without Flask, on the same thread pool (json_lane.py).

Nothing here connects to PostgreSQL or Redis: engines and clients are created lazily on first use, so the
factory is cheap and a worker process that forks after create_app() shares no sockets.
"""

from __future__ import annotations

import os
from typing import Any

import connexion
from connexion.exceptions import OAuthProblem
from connexion.middleware import MiddlewarePosition

from app.adapters.rate_limit import RateLimitDecision, RateLimiter, get_rate_limiter
from app.entrypoints import access_log, observability
from app.entrypoints.access_log import AccessLog
from app.entrypoints.fresh_reads import FreshReadMiddleware
from app.entrypoints.freshness_guard import FreshnessGuardMiddleware
from app.entrypoints.http import problems
from app.entrypoints.http.responses import JSONIFIER
from app.entrypoints.http.validation import VALIDATOR_MAP
from app.entrypoints.json_lane import JsonLane
from app.entrypoints.middleware import (
    MAX_BODY_BYTES,
    MAX_REQUESTS_IN_FLIGHT,
    AdmissionMiddleware,
    InFlightLimitMiddleware,
    RequestContextMiddleware,
)
from app.entrypoints.observability import HttpMetricsMiddleware
from app.entrypoints.web import event_docs
from app.entrypoints.web.login import browser_login_redirect
from app.entrypoints.web.stream import PageStreamMiddleware
from app.entrypoints.wsgi_bridge import BufferedWSGIBridge
from app.service_layer.users import UserDirectory, get_user_directory
from generated import routes

VALIDATE_RESPONSES_ENV = "HASHINSIGHT_VALIDATE_RESPONSES"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class _LazyLimiter:
    """Resolves the process-wide limiter on first use, so create_app() touches no Redis client."""

    def __init__(self) -> None:
        self._limiter: RateLimiter | None = None

    def _get(self) -> RateLimiter:
        if self._limiter is None:
            self._limiter = get_rate_limiter()
        return self._limiter

    @property
    def enabled(self) -> bool:
        return self._get().enabled

    def check(self, *args: Any, **kwargs: Any) -> RateLimitDecision:
        return self._get().check(*args, **kwargs)

    async def check_async(self, *args: Any, **kwargs: Any) -> RateLimitDecision:
        return await self._get().check_async(*args, **kwargs)


def create_app(
    *,
    validate_responses: bool | None = None,
    rate_limiter: RateLimiter | None = None,
    user_directory: UserDirectory | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_in_flight: int = MAX_REQUESTS_IN_FLIGHT,
) -> connexion.FlaskApp:
    """Build the app. The keyword arguments are for tests; production uses the defaults."""
    if validate_responses is None:
        validate_responses = _flag(VALIDATE_RESPONSES_ENV)
    app = connexion.FlaskApp(__name__)
    app.add_middleware(HttpMetricsMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION,
                       access_log=AccessLog() if access_log.enabled() else None)
    app.add_middleware(
        RequestContextMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION, max_body_bytes=max_body_bytes
    )
    app.add_middleware(InFlightLimitMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION, limit=max_in_flight)
    # Before admission: a write refused because the bus is behind spends no rate-limit token.
    app.add_middleware(FreshnessGuardMiddleware, position=MiddlewarePosition.BEFORE_VALIDATION)
    app.add_middleware(
        AdmissionMiddleware,
        position=MiddlewarePosition.BEFORE_VALIDATION,
        directory=user_directory or get_user_directory(),
        limiter=rate_limiter or _LazyLimiter(),
    )
    # After admission (the stream is provisioned and rate limited like any request), before Flask's threads.
    app.add_middleware(PageStreamMiddleware, position=MiddlewarePosition.BEFORE_VALIDATION)
    # Last before the handler, so every contract check applies to what it answers from a fresh cache entry.
    app.add_middleware(FreshReadMiddleware, position=MiddlewarePosition.BEFORE_CONTEXT)
    problems.install(app)
    # A browser without credentials on GET /analytics/main is redirected to the login form (303); every other
    # 401 stays a problem (browser_login_redirect delegates to problems.handle_problem).
    app.add_error_handler(OAuthProblem, browser_login_redirect)
    routes.add_api(
        app,
        strict_validation=True,
        validate_responses=validate_responses,
        validator_map=VALIDATOR_MAP,
        jsonifier=JSONIFIER,
    )
    event_docs.install(app.app)  # /api/events/: the AsyncAPI HTML docs, beside Swagger UI at /api/ui/
    observability.instrument(app)
    # Connexion built its own bridge around the original wsgi_app; ours wraps the instrumented one (the spans see
    # the response status) and costs one thread hop per request (app/entrypoints/wsgi_bridge.py). The JSON
    # operations do not cross it: they run in the lane, on the same thread pool (app/entrypoints/json_lane.py).
    bridge = BufferedWSGIBridge(app.app.wsgi_app)
    app._middleware_app.asgi_app = JsonLane(bridge, bridge.executor, JSONIFIER,
                                            untraced_paths=tuple(observability.UNTRACED_URLS.split(",")))
    return app
