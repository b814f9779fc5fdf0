"""The JSON operations, served without Flask.

The app behind Connexion's middleware (routing, security, admission, validation, context) is this lane. An
operation whose handler lives in one of JSON_MODULES runs here: Connexion's own ASGI decorators turn the request
into the handler's arguments and its `(body, status, headers)` into a response, and the handler itself runs on
the bridge's thread pool (a handler blocks on PostgreSQL; the pool is what the API's connection pool is sized
for). Everything else (the page, its forms, the login form, the metrics text, the AsyncAPI docs) goes on to
Flask through the bridge, as before.

Why: a write spent about a quarter of web's interpreter time in Flask's request handling, its tracing hooks,
Connexion's Flask decorators and the WSGI bridge (py-spy GIL profile under POST /api/miners load), more than
its handler. The handlers of JSON_MODULES never touch Flask: they read the caller from Connexion's context
(app/entrypoints/http/context.py) and return plain tuples (responses.py).

Each request gets the SERVER span Flask's instrumentation gave it, continuing the request's `traceparent`
header, current while the handler runs, so a write still stores that span's traceparent on its outbox row.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from connexion.context import _operation, _receive, _scope
from connexion.decorators import StarletteDecorator
from connexion.jsonifier import Jsonifier
from opentelemetry import propagate, trace
from starlette.types import ASGIApp, Receive, Scope, Send

from app.adapters import tracing

JSON_MODULES = frozenset(f"app.entrypoints.http.{name}" for name in (
    "billing", "health", "intelligence", "market", "miner_models", "miners", "ops", "portfolio", "treasury",
))


class _PoolDecorator(StarletteDecorator):
    """Connexion's ASGI decorator, running sync handlers on the given pool with the request's context.

    One per operation, and decorated once: Connexion's own rebuilds the parameter and response decorators
    (reading the handler's signature again) and the URI parser on every request, and hands the request the
    context's proxies of the scope and receive channel; here the request gets the scope and channel themselves.
    Both decorators and the parser hold only what the operation defines, so sharing them across requests is
    what Connexion would compute each time.
    """

    def __init__(self, executor: Executor, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._executor = executor

    def __call__(self, function: Callable) -> Callable:
        # Decorated on the operation's first request (JsonLane._handler), inside its context: the URI parser is
        # that operation's.
        decorated, parser = self.decorate(function), self.uri_parser

        @functools.wraps(function)
        async def wrapper(*_args: Any, **_kwargs: Any) -> Any:
            request = self.framework.get_request(uri_parser=parser, scope=_scope.get(), receive=_receive.get())
            return await decorated(request)

        return wrapper

    @property
    def _sync_async_decorator(self) -> Callable[[Callable], Callable]:
        executor = self._executor

        def decorator(function: Callable) -> Callable:
            @functools.wraps(function)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                call = functools.partial(contextvars.copy_context().run, function, *args, **kwargs)
                return await asyncio.get_running_loop().run_in_executor(executor, call)

            return wrapper

        return decorator


class JsonLane:
    def __init__(self, fallback: ASGIApp, executor: Executor, jsonifier: Jsonifier,
                 untraced_paths: tuple[str, ...] = ()) -> None:
        self.fallback = fallback
        self._executor = executor
        self._jsonifier = jsonifier
        self._untraced = untraced_paths
        self._handlers: dict[int, Callable[[], Any] | None] = {}

    def _handler(self, operation: Any) -> Callable[[], Any] | None:
        """The decorated handler of a JSON operation, None for one Flask serves (made once per operation)."""
        key = id(operation)
        if key not in self._handlers:
            function = operation.function
            module = getattr(function, "__module__", "")
            self._handlers[key] = _PoolDecorator(
                self._executor, pythonic_params=False, jsonifier=self._jsonifier,
            )(function) if module in JSON_MODULES else None
        return self._handlers[key]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        routing = (scope.get("extensions") or {}).get("connexion_routing") or {}
        operation = _operation.get(None) if scope["type"] == "http" else None
        # The operation Connexion's context layer set for this request, and no other: a path outside the
        # contract reaches here without one.
        ours = operation is not None and getattr(operation, "operation_id", None) == routing.get("operation_id")
        handler = self._handler(operation) if ours else None
        if handler is None:
            await self.fallback(scope, receive, send)
            return
        if scope.get("path", "").startswith(self._untraced):
            response = await handler()
        else:
            route = f"{routing.get('api_base_path', '')}{operation.path}"
            response = await self._traced(scope, handler, route)
        await response(scope, receive, send)

    async def _traced(self, scope: Scope, handler: Callable[[], Any], route: str) -> Any:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        method = scope.get("method", "GET")
        attributes = {"http.method": method, "http.route": route, "http.target": scope.get("path", ""),
                      "http.scheme": scope.get("scheme", "http")}
        with tracing.tracer().start_as_current_span(
            f"{method} {route}", context=propagate.extract(headers), kind=trace.SpanKind.SERVER,
            attributes=attributes,
        ) as span:
            response = await handler()
            span.set_attribute("http.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(trace.Status(trace.StatusCode.ERROR))
            return response
