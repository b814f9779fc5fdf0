"""The buffered ASGI -> WSGI bridge in front of Flask: what a WSGI app sees and what the client gets back."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import pytest

from app.entrypoints.wsgi_bridge import BufferedWSGIBridge

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def _scope(method: str = "POST", path: str = "/api/miners", query: bytes = b"a=1") -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
            "raw_path": path.encode(), "root_path": "", "scheme": "http", "query_string": query,
            "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json")],
            "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}


def _run(bridge: BufferedWSGIBridge, scope: dict[str, Any], body_parts: list[bytes]) -> list[dict[str, Any]]:
    inbox = [{"type": "http.request", "body": part, "more_body": i < len(body_parts) - 1}
             for i, part in enumerate(body_parts)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0) if inbox else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def main() -> None:
        request_id.set("req-42")
        await bridge(scope, receive, send)

    asyncio.run(main())
    return sent


def test_one_call_on_a_pool_thread_sees_the_whole_request_and_its_context() -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(method=environ["REQUEST_METHOD"], path=environ["PATH_INFO"], query=environ["QUERY_STRING"],
                    body=environ["wsgi.input"].read(), thread=threading.current_thread().name,
                    request_id=request_id.get(), content_type=environ.get("CONTENT_TYPE"))
        start_response("201 Created", [("Content-Type", "application/json"), ("X-Thing", " yes ")])
        return [b'{"id":', b'"m1"}']

    sent = _run(BufferedWSGIBridge(app), _scope(), [b'{"model_id":', b'"s21"}'])
    assert seen == {"method": "POST", "path": "/api/miners", "query": "a=1", "body": b'{"model_id":"s21"}',
                    "thread": seen["thread"], "request_id": "req-42", "content_type": "application/json"}
    assert seen["thread"].startswith("WSGI") and seen["thread"] != threading.main_thread().name
    assert sent == [
        {"type": "http.response.start", "status": 201,
         "headers": [(b"content-type", b"application/json"), (b"x-thing", b"yes")]},
        {"type": "http.response.body", "body": b'{"id":"m1"}'},
    ]


def test_the_write_callable_and_close_are_honoured() -> None:
    closed: list[bool] = []

    class Body(list):
        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        write = start_response("200 OK", [])
        write(b"legacy ")
        return Body([b"and iterable"])

    sent = _run(BufferedWSGIBridge(app), _scope("GET"), [b""])
    assert sent[1]["body"] == b"legacy and iterable"
    assert closed == [True]


def test_an_exception_reaches_the_asgi_layers_and_nothing_is_sent() -> None:
    # Flask propagates exceptions (Connexion sets PROPAGATE_EXCEPTIONS) for Connexion's problem middleware.
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise LookupError("no such miner")

    sent: list[dict[str, Any]] = []
    with pytest.raises(LookupError, match="no such miner"):
        sent = _run(BufferedWSGIBridge(app), _scope("GET"), [b""])
    assert sent == []


def test_an_app_that_never_starts_a_response_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="start_response"):
        _run(BufferedWSGIBridge(lambda environ, start_response: []), _scope("GET"), [b""])


def test_lifespan_is_acknowledged() -> None:
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(BufferedWSGIBridge(lambda e, s: [])({"type": "lifespan"}, receive, send))
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
