"""The ASGI -> WSGI bridge in front of Flask: one thread hop per request, the response buffered.

Connexion wraps Flask in a2wsgi's bridge, which runs the WSGI call on a thread and hands every message across
threads one at a time: the request body read in pieces, the response start, each body chunk and the final
empty chunk, each a coroutine scheduled on the event loop and a future the handler thread blocks on. Under load
those wake-ups cost about a fifth of a web process's CPU (measured with a GIL-only profile at 100 writes/s).

Here the request body is read on the event loop first (RequestContextMiddleware has already bounded it to
MAX_BODY_BYTES), the whole WSGI call runs on one pool thread, and its status, headers and body come back in one
piece, sent from the event loop. That suits this app: no Flask handler streams (the one long-lived response,
GET /analytics/stream, is an ASGI layer, app/entrypoints/web/stream.py), and its bodies are small.

The WSGI environ is built by a2wsgi's `build_environ`, so it is the one Flask saw before. The request's
context variables (request id, trace) reach the handler thread, as they did.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from a2wsgi.wsgi import build_environ
from starlette.types import Receive, Scope, Send

# As many as a2wsgi had, which is what app/adapters/db.py sizes the API's connection pool for.
THREADS = 10

_Result = tuple[int, list[tuple[bytes, bytes]], bytes]


class BufferedWSGIBridge:
    def __init__(self, app: Any, threads: int = THREADS) -> None:
        self.app = app
        self.executor = ThreadPoolExecutor(thread_name_prefix="WSGI", max_workers=threads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # Flask has no startup or shutdown work: acknowledge both
            while (message := await receive())["type"] in ("lifespan.startup", "lifespan.shutdown"):
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
            return
        if scope["type"] != "http":  # a websocket: this app serves none
            await send({"type": "websocket.close", "code": 1000})
            return
        body = await _read_body(receive)
        environ = build_environ(scope, io.BytesIO(body))  # type: ignore[arg-type]
        call = contextvars.copy_context().run
        status, headers, content = await asyncio.get_running_loop().run_in_executor(
            self.executor, call, self._call_wsgi, environ)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def _call_wsgi(self, environ: dict[str, Any]) -> _Result:
        started: list[Any] = []

        def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, response_headers]
            return chunks.append  # the legacy write() callable

        chunks: list[bytes] = []
        iterable = self.app(environ, start_response)
        try:
            chunks.extend(iterable)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        if not started:
            raise RuntimeError("the WSGI application returned without calling start_response")
        status, response_headers = started
        headers = [(k.strip().lower().encode("latin-1"), v.strip().encode("latin-1")) for k, v in response_headers]
        return int(status.split(" ", 1)[0]), headers, b"".join(chunks)


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away: the handler sees the body received so far, as before
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return parts[0] if len(parts) == 1 else b"".join(parts)
