"""Request metrics and traces of the web app, wired by create_app().

- HttpMetricsMiddleware (outermost ASGI layer): the access log's line (access_log.py), and one count per answered
  request and a latency histogram, per
  contract operation (the operationId Connexion's routing resolved), so every error status is counted too.
  Paths outside the contract get a fixed name (swagger_ui, openapi_spec, event_docs, or unmatched): a label
  never carries a raw path.
- instrument(app): OpenTelemetry's Flask instrumentation runs every Flask handler (the JSON operations' lane,
  json_lane.py, opens the same span for its own) inside a SERVER span that continues
  the request's W3C `traceparent` header (or starts a trace). A write stores that span's traceparent on its
  outbox row (context.current_caller), which is how the trace reaches Kafka and the consumers.
"""

from __future__ import annotations

import os
import time

import connexion
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.adapters import metrics, tracing
from app.entrypoints.access_log import AccessLog
from app.entrypoints.access_log import line as access_line
from app.entrypoints.http.request_meta import REQUEST_ID_EXTENSION

# Long-lived by design: counted, but kept out of the latency histogram.
STREAMING_OPERATIONS = frozenset({"analytics_stream"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_UNROUTED = (("/api/ui", "swagger_ui"), ("/api/openapi", "openapi_spec"), ("/api/events", "event_docs"))
# Scrapes and health polls would otherwise fill the trace log with spans nobody follows.
UNTRACED_URLS = "/metrics,/api/health"


def operation_of(scope: Scope) -> str:
    routing = (scope.get("extensions") or {}).get("connexion_routing") or {}
    operation = routing.get("operation_id")
    if operation:
        return str(operation)
    path = scope.get("path", "")
    return next((name for prefix, name in _UNROUTED if path.startswith(prefix)), "unmatched")


class HttpMetricsMiddleware:
    """Metrics, and the access log's line (app/entrypoints/access_log.py), of every answered request."""

    def __init__(self, app: ASGIApp, access_log: AccessLog | None = None) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Connexion's routing records the operation id in this dict; inner layers copy the scope shallowly,
        # so creating it here lets us read it back afterwards.
        scope.setdefault("extensions", {})
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - started
            operation = operation_of(scope)
            method = scope.get("method", "GET")
            metrics.HTTP_REQUESTS.labels(operation, method if method in _METHODS else "other", str(status)).inc()
            if operation not in STREAMING_OPERATIONS:
                metrics.HTTP_LATENCY.labels(operation).observe(seconds)
            if self.access_log is not None:
                request_id = scope["extensions"].get(REQUEST_ID_EXTENSION, "")
                self.access_log.add(access_line(scope, status, seconds, operation, request_id, time.time()))


def instrument(app: connexion.FlaskApp) -> None:
    """Trace every Flask handler (idempotent per process for the provider; per app for the hooks)."""
    tracing.configure(os.environ.get("HASHINSIGHT_SERVICE") or "web")
    flask_app = app.app
    FlaskInstrumentor().instrument_app(flask_app, excluded_urls=UNTRACED_URLS)
