"""One pipelined Redis connection per event loop, for the web's calls on its request path.

Every authenticated request asks the rate limiter (one EVALSHA) and a cached read asks for its entries (one MGET),
both on the event loop. redis-py's asyncio client spent ~100 µs of CPU on each such call (its pool, its locks,
its retry and timeout wrappers), about three times the call itself. Here a call is one write of the packed
command to a connection every caller of the loop shares, and one future its reply resolves: concurrent callers
pipeline on the one socket and Redis answers in order, so replies are matched to callers first in, first out.
A web process never queues for a pooled connection either, however many requests it has in flight.

Failure keeps redis-py's meaning, so callers handle it as before (REDIS_DOWN_ERRORS):
- no connection, or a connection lost with replies outstanding: redis.exceptions.ConnectionError; a command
  finds a closed connection at once and opens a new one, and a call whose connection died under it is tried
  once more on a new one (what a restarted Redis looks like);
- no reply within the socket timeout: redis.exceptions.TimeoutError, and the connection is dropped (a reply
  still owed would otherwise answer the next caller's command);
- an error reply: redis.exceptions.ResponseError (NoScriptError for NOSCRIPT), the connection kept.

Replies are decoded as the rest of the project reads them: bulk strings to str.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import Sequence
from typing import Any

import redis.exceptions

_CRLF = b"\r\n"


class _Incomplete(Exception):
    """The buffer ends inside a reply: wait for more bytes."""


def pack_command(*args: Any) -> bytes:
    """A command as a RESP array of bulk strings (str as UTF-8, numbers as their text)."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, (int, float)) and not isinstance(arg, bool):
            data = repr(arg).encode()
        else:
            raise TypeError(f"a Redis argument must be bytes, str, int or float, not {type(arg).__name__}")
        out.append(b"$%d\r\n" % len(data))
        out.append(data)
        out.append(_CRLF)
    return b"".join(out)


def _error(message: str) -> redis.exceptions.ResponseError:
    if message.startswith("NOSCRIPT"):
        return redis.exceptions.NoScriptError(message)
    return redis.exceptions.ResponseError(message)


class ReplyReader:
    """Parses RESP2 replies from the bytes fed to it. An error reply is returned as a ResponseError, not raised:
    it answers one command, and the ones behind it are unaffected."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> None:
        if self._pos:
            del self._buf[:self._pos]
            self._pos = 0
        self._buf += data

    def replies(self) -> list[Any]:
        """Every reply the buffer holds in full, in order."""
        out = []
        while self._pos < len(self._buf):
            try:
                reply, end = self._parse(self._pos)
            except _Incomplete:
                break
            out.append(reply)
            self._pos = end
        return out

    def _line(self, pos: int) -> tuple[bytes, int]:
        end = self._buf.find(_CRLF, pos)
        if end < 0:
            raise _Incomplete
        return bytes(self._buf[pos:end]), end + 2

    def _parse(self, pos: int) -> tuple[Any, int]:
        line, pos = self._line(pos)
        kind, rest = line[:1], line[1:]
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None, pos
            end = pos + size
            if len(self._buf) < end + 2:
                raise _Incomplete
            return self._buf[pos:end].decode(), end + 2
        if kind == b":":
            return int(rest), pos
        if kind == b"*":
            count = int(rest)
            if count < 0:
                return None, pos
            items = []
            for _ in range(count):
                item, pos = self._parse(pos)
                items.append(item)
            return items, pos
        if kind == b"+":
            return rest.decode(), pos
        if kind == b"-":
            return _error(rest.decode(errors="replace")), pos
        raise redis.exceptions.InvalidResponse(f"unexpected reply from Redis: {line[:100]!r}")


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.closed = False
        self._reader = ReplyReader()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, packed: bytes, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = loop.create_future()
        self.waiting.append(future)
        assert self.transport is not None
        self.transport.write(packed)
        return future

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        try:
            replies = self._reader.replies()
        except (redis.exceptions.InvalidResponse, ValueError) as exc:  # ValueError: not a number, not UTF-8
            self._fail(exc if isinstance(exc, redis.exceptions.RedisError)
                       else redis.exceptions.InvalidResponse(f"unreadable reply from Redis: {exc}"))
            return
        for reply in replies:
            if not self.waiting:
                self._fail(redis.exceptions.InvalidResponse("a reply from Redis that no command asked for"))
                return
            future = self.waiting.popleft()
            if not future.done():  # its caller may have given up (cancelled, timed out)
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        reason = f"connection to Redis lost: {exc}" if exc else "connection to Redis closed"
        self._fail_waiting(redis.exceptions.ConnectionError(reason))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, exc: Exception) -> None:
        self._fail_waiting(exc)
        self.close()

    def _fail_waiting(self, exc: Exception) -> None:
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(exc)


def _setup_commands(db: int, username: str | None, password: str | None,
                    client_name: str | None) -> list[tuple[Any, ...]]:
    """What a new connection sends before any caller's command."""
    commands: list[tuple[Any, ...]] = []
    if password:
        commands.append(("AUTH", username, password) if username else ("AUTH", password))
    if db:
        commands.append(("SELECT", db))
    if client_name:
        commands.append(("CLIENT", "SETNAME", client_name))
    return commands


class PipelinedRedis:
    """Commands on one connection shared by every caller of the event loop it is used on."""

    def __init__(self, *, host: str = "localhost", port: int = 6379, db: int = 0, username: str | None = None,
                 password: str | None = None, client_name: str | None = None, socket_timeout: float = 0.5,
                 connect_timeout: float = 0.5) -> None:
        self._address = (host, port)
        self._handshake = _setup_commands(db, username, password, client_name)
        self._socket_timeout = socket_timeout
        self._connect_timeout = connect_timeout
        self._conn: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None

    async def execute(self, *args: Any) -> Any:
        """Send one command and return its reply; raises as the module docstring says."""
        packed = pack_command(*args)
        try:
            return await self._round_trip(packed)
        except redis.exceptions.ConnectionError:
            return await self._round_trip(packed)  # once more, on a new connection

    async def mget(self, keys: Sequence[str]) -> list[str | None]:
        return await self.execute("MGET", *keys)

    def register_script(self, script: str) -> Script:
        return Script(self, script)

    async def aclose(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _round_trip(self, packed: bytes) -> Any:
        conn = await self._connection()
        future = conn.send(packed, asyncio.get_running_loop())
        try:
            async with asyncio.timeout(self._socket_timeout):
                reply = await future
        except TimeoutError:
            conn.close()
            raise redis.exceptions.TimeoutError(f"no reply from Redis within {self._socket_timeout} s") from None
        if isinstance(reply, redis.exceptions.ResponseError):
            raise reply
        return reply

    async def _connection(self) -> _Connection:
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(self._connected)
        # Shielded: a caller that gives up does not abort the connection the others are waiting for.
        return await asyncio.shield(self._connecting)

    def _connected(self, task: asyncio.Task[_Connection]) -> None:
        self._connecting = None
        if not task.cancelled() and task.exception() is None:
            self._conn = task.result()

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        host, port = self._address
        conn: _Connection | None = None
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(_Connection, host, port)
                replies = [conn.send(pack_command(*cmd), loop) for cmd in self._handshake]
                answers = [await reply for reply in replies]
        except BaseException as exc:
            if conn is not None:  # connected, but its setup did not finish: not a connection anyone may use
                conn.close()
            if isinstance(exc, (OSError, TimeoutError)):
                raise redis.exceptions.ConnectionError(
                    f"cannot connect to Redis at {host}:{port}: {type(exc).__name__} {exc}".rstrip()) from None
            raise
        for answer in answers:
            if isinstance(answer, redis.exceptions.ResponseError):
                conn.close()
                raise redis.exceptions.AuthenticationError(f"Redis refused the connection's setup: {answer}")
        return conn


class Script:
    """A Lua script run by its SHA-1 (EVALSHA), sent in full (EVAL, which also caches it) when Redis does not
    know it: the first call, and after a restart or SCRIPT FLUSH."""

    def __init__(self, client: PipelinedRedis, script: str) -> None:
        self._client = client
        self.script = script
        self.sha = hashlib.sha1(script.encode()).hexdigest()

    async def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        try:
            return await self._client.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return await self._client.execute("EVAL", self.script, len(keys), *keys, *args)
