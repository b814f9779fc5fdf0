"""A lean load generator for the benchmark and the fault-injection suite.

- `LoadUser`s: users provisioned straight in the database, on the enterprise plan so the rate limiter (on, as
  in production) does not throttle a load test, each with a dev token.
- `HttpPool`: a minimal HTTP/1.1 keep-alive client on asyncio streams. A write costs the generator a few tens
  of microseconds of CPU (a `requests` call costs about a millisecond), so the generator does not eat the
  machine it measures. It speaks just what the API answers: a status line, headers, a Content-Length body.
- `Pacer`: open-loop scheduling. Requests start at fixed intervals whatever the answers do, so a slow system
  meets the full offered load (a closed loop would slow down with it and hide the queueing).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from app.adapters.tokens import encode_token
from tools import db

ALL_SCOPES = ["miners:read", "miners:write", "portfolio:read", "intel:read"]
MODELS = ["antminer-s21", "antminer-s19-pro", "whatsminer-m50s", "avalon-a1466"]


@dataclass(frozen=True)
class LoadUser:
    tenant_id: str
    user_id: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def provision_users(prefix: str, tenants: int, users_per_tenant: int, scopes: list[str] | None = None
                    ) -> list[LoadUser]:
    """Users `<prefix>-u<t>-<n>` in tenants `<prefix>-t<t>`, each on the enterprise plan, with a 6-hour token."""
    rows = [(f"{prefix}-t{t}", f"{prefix}-u{t}-{n}") for t in range(tenants) for n in range(users_per_tenant)]
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO users (id, tenant_id, display_name) SELECT u, t, 'load' FROM unnest(%s::text[], %s::text[]) "
            "AS r (t, u) ON CONFLICT DO NOTHING",
            ([t for t, _ in rows], [u for _, u in rows]),
        )
        cur.execute(
            """INSERT INTO user_subscriptions (tenant_id, user_id, plan, requests_per_minute, burst)
               SELECT r.t, r.u, p.plan, p.requests_per_minute, p.burst
                 FROM unnest(%s::text[], %s::text[]) AS r (t, u), subscription_plans p
                WHERE p.plan = 'enterprise'
               ON CONFLICT DO NOTHING""",
            ([t for t, _ in rows], [u for _, u in rows]),
        )
    return [LoadUser(t, u, encode_token(u, t, scopes or ALL_SCOPES, ttl_seconds=6 * 3600)) for t, u in rows]


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def retry_after(self, default: float = 1.0) -> float:
        """The seconds a refusal (429, 503) asks the client to wait: its Retry-After, else `default`."""
        try:
            return min(max(float(self.headers.get("retry-after", default)), 0.0), 60.0)
        except ValueError:  # an HTTP date: the API sends seconds, so this is someone else's answer
            return default


# What HttpPool.request raises when no answer comes (refused, dropped, cut short, timed out).
NO_ANSWER: tuple[type[BaseException], ...] = (OSError, ConnectionError, asyncio.TimeoutError,
                                              asyncio.IncompleteReadError)


class HttpPool:
    """Keep-alive connections to one host, reused across requests; a broken one is replaced on the next use."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                      body: Any = None) -> Response:
        """One request; raises OSError / asyncio.TimeoutError / ConnectionError when no answer comes."""
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(payload)}"]
        if body is not None:
            head.append("Content-Type: application/json")
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
        reader, writer = await self._connection()
        try:
            writer.write(raw)
            response = await asyncio.wait_for(self._read(reader), self.timeout)
        except BaseException:
            writer.close()
            raise
        if response.headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            self._idle.append((reader, writer))
        return response

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self._idle:
            reader, writer = self._idle.pop()
            if not writer.is_closing() and not reader.at_eof():
                return reader, writer
            writer.close()
        return await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout)

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> Response:
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionError("connection closed before an answer")
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await reader.readexactly(length) if length else b""
        return Response(status, headers, body)

    def close(self) -> None:
        for _reader, writer in self._idle:
            writer.close()
        self._idle.clear()


class Pacer:
    """Start times at `rate` per second from now, for `duration` seconds (open loop: never waits for answers)."""

    def __init__(self, rate: float, duration: float) -> None:
        self.rate = rate
        self.duration = duration

    async def ticks(self) -> AsyncIterator[int]:
        start = time.perf_counter()
        n = 0
        total = int(self.rate * self.duration)
        while n < total:
            due = start + n / self.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            yield n
            n += 1


def new_key() -> str:
    return str(uuid.uuid4())
