"""GET /analytics/stream (operationId analytics_stream): server-sent events from the consumers to the page.

Served here, as an ASGI layer behind Connexion's security and the admission middleware, instead of by a Flask
handler: Flask handlers run on a small thread pool (10 threads per process, app/entrypoints/wsgi_bridge.py),
and a stream holds its request open for as long as the page is open. Here a stream is one coroutine and one
Redis pub/sub connection.

Connexion has already checked the session (cookie or bearer, `portfolio:read`) and the admission middleware
has provisioned the user and counted the request against the plan's rate limit when this layer runs.

The stream (text/event-stream):
    retry: 3000                          reconnect after 3 s if the connection drops
    event: ready / data: {"user_id": ...}   once subscribed; the page reloads its figures then (it may have
                                         missed notifications while it was not connected)
    event: invalidated / id: n / data: <the page notification, app/adapters/page_events.py>
    : keep-alive                         a comment every 15 s, so proxies and the browser keep the connection
Redis unreachable when the stream opens: 503 problem with Retry-After. Redis lost later: the stream ends and the
browser reconnects. At most MAX_STREAMS streams per web process; beyond that, 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import redis.asyncio as aioredis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.adapters import metrics, page_events
from app.config import get_settings
from app.entrypoints.http.problems import RETRY_AFTER_SECONDS, TYPE_UNAVAILABLE, ApiProblem

__all__ = ["TYPE_UNAVAILABLE", "PageStreamMiddleware", "StreamUnavailable"]

log = logging.getLogger(__name__)

OPERATION = "analytics_stream"
HEARTBEAT_SECONDS = 15.0
RETRY_MS = 3000
MAX_STREAMS = 200
_open = 0


class StreamUnavailable(ApiProblem):
    def __init__(self, detail: str) -> None:
        super().__init__(503, detail, type=TYPE_UNAVAILABLE, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _event(name: str, data: str, event_id: int | None = None) -> bytes:
    lines = [f"event: {name}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines += [f"data: {line}" for line in data.splitlines() or [""]]
    return ("\n".join(lines) + "\n\n").encode()


class PageStreamMiddleware:
    def __init__(self, app: ASGIApp, redis_url: str | None = None) -> None:
        self.app = app
        self.redis_url = redis_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        routing = (scope.get("extensions") or {}).get("connexion_routing") or {}
        if scope["type"] != "http" or routing.get("operation_id") != OPERATION:
            await self.app(scope, receive, send)
            return
        token_info: dict[str, Any] = scope["extensions"]["connexion_context"]["token_info"]
        await self.stream(token_info["sub"], receive, send)

    async def stream(self, user_id: str, receive: Receive, send: Send) -> None:
        global _open
        if _open >= MAX_STREAMS:
            raise StreamUnavailable(f"This server has {MAX_STREAMS} live page streams open; retry shortly")
        client = aioredis.from_url(self.redis_url or get_settings().redis_url, socket_connect_timeout=2,
                                   health_check_interval=30)
        pubsub = client.pubsub()
        channel = page_events.channel(user_id)
        try:
            await pubsub.subscribe(channel)
            confirmed = await pubsub.get_message(timeout=2.0)  # the subscribe confirmation
            if not confirmed or confirmed.get("type") != "subscribe":
                raise ConnectionError("no subscribe confirmation from Redis")
        except (OSError, aioredis.RedisError) as exc:
            await _close(pubsub, client)
            log.warning("page stream for %s: Redis unavailable (%s)", user_id, exc)
            raise StreamUnavailable("Live updates are unavailable right now (the cache is unreachable); "
                                    f"retry in {RETRY_AFTER_SECONDS} s") from None
        _open += 1
        metrics.SSE_STREAMS.inc()
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-store"),
                (b"x-accel-buffering", b"no"),  # a buffering proxy would hold the events back
                (b"x-content-type-options", b"nosniff"),
            ]})
            await _body(send, f"retry: {RETRY_MS}\n\n".encode()
                        + _event("ready", json.dumps({"user_id": user_id, "channel": channel})))
            await self._relay(pubsub, receive, send)
        except (OSError, aioredis.RedisError) as exc:
            log.info("page stream for %s ended: %s", user_id, exc)
        finally:
            _open -= 1
            metrics.SSE_STREAMS.dec()
            await _close(pubsub, client)
        with contextlib.suppress(ConnectionError):  # the browser left first: nothing to end
            await _body(send, b"", more=False)

    async def _relay(self, pubsub: Any, receive: Receive, send: Send) -> None:
        disconnected = asyncio.ensure_future(_disconnect(receive))
        sequence = 0
        idle = 0.0
        try:
            while not disconnected.done():
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if msg is None:
                    idle += 1.0
                    if idle >= HEARTBEAT_SECONDS:
                        idle = 0.0
                        await _body(send, b": keep-alive\n\n")
                    continue
                idle = 0.0
                data = msg["data"].decode() if isinstance(msg["data"], bytes) else str(msg["data"])
                sequence += 1
                await _body(send, _event("invalidated", data, sequence))
                metrics.SSE_MESSAGES.inc()
        finally:
            disconnected.cancel()


async def _disconnect(receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _body(send: Send, chunk: bytes, more: bool = True) -> None:
    try:
        await send({"type": "http.response.body", "body": chunk, "more_body": more})
    except OSError:
        raise
    except Exception as exc:  # the client went away while we wrote (uvicorn/starlette raise their own types)
        raise ConnectionError(str(exc)) from exc


async def _close(pubsub: Any, client: Any) -> None:
    try:
        await pubsub.aclose()
        await client.aclose()
    except Exception as exc:  # noqa: BLE001 - closing a broken connection must not mask why it ended
        log.debug("closing page stream redis connection: %s", exc)
