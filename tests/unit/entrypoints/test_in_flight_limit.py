"""The web's bound on requests in progress: past it, an immediate 503 problem with Retry-After."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from app.entrypoints.http.problems import TYPE_OVERLOADED
from app.entrypoints.middleware import InFlightLimitMiddleware


class HeldApp:
    """A downstream app whose requests stay in progress until released (or fail when told to)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self.started += 1
        await self.release.wait()
        if scope["path"] == "/boom":
            raise RuntimeError("handler failed")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def _request(app: Any, path: str = "/api/miners", method: str = "POST") -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await app({"type": "http", "path": path, "method": method, "headers": []}, receive, send)
    return sent


def _status(sent: list[dict]) -> int:
    return sent[0]["status"]


def test_past_the_limit_a_request_is_refused_at_once_with_a_problem_and_retry_after() -> None:
    async def scenario() -> None:
        held = HeldApp()
        app = InFlightLimitMiddleware(held, limit=2)
        first = [asyncio.create_task(_request(app)) for _ in range(2)]
        await asyncio.sleep(0)
        refused = await asyncio.wait_for(_request(app), 1)  # answered while the two are still in progress
        assert held.started == 2 and app.in_flight == 2 and app.shed == 1
        start = refused[0]
        headers = dict(start["headers"])
        body = json.loads(refused[1]["body"])
        assert start["status"] == 503
        assert headers[b"content-type"] == b"application/problem+json" and headers[b"retry-after"] == b"1"
        assert body["type"] == TYPE_OVERLOADED and body["status"] == 503 and "limit of 2" in body["detail"]
        held.release.set()
        assert [_status(s) for s in await asyncio.gather(*first)] == [200, 200]
        assert app.in_flight == 0
        assert _status(await _request(app)) == 200  # room again

    asyncio.run(scenario())


def test_writes_have_fewer_places_than_reads_so_an_overloaded_web_refuses_writes_first() -> None:
    async def scenario() -> None:
        held = HeldApp()
        app = InFlightLimitMiddleware(held, limit=3, write_limit=1)
        write = asyncio.create_task(_request(app))
        await asyncio.sleep(0)
        refused = await asyncio.wait_for(_request(app, method="PATCH"), 1)
        assert _status(refused) == 503 and "limit of 1 writes" in json.loads(refused[1]["body"])["detail"]
        reads = [asyncio.create_task(_request(app, "/api/portfolio", "GET")) for _ in range(2)]
        await asyncio.sleep(0)
        assert held.started == 3 and app.in_flight == 3 and app.writes_in_flight == 1
        full = await asyncio.wait_for(_request(app, "/api/portfolio", "GET"), 1)
        assert "limit of 3 requests" in json.loads(full[1]["body"])["detail"]
        held.release.set()
        assert [_status(s) for s in await asyncio.gather(write, *reads)] == [200, 200, 200]
        assert app.in_flight == 0 and app.writes_in_flight == 0 and app.shed == 2

    asyncio.run(scenario())


def test_uncounted_paths_pass_when_full_and_a_failed_request_frees_its_place() -> None:
    async def scenario() -> None:
        held = HeldApp()
        app = InFlightLimitMiddleware(held, limit=1)
        failing = asyncio.create_task(_request(app, "/boom"))
        await asyncio.sleep(0)
        health = asyncio.create_task(_request(app, "/api/health"))
        await asyncio.sleep(0)
        assert held.started == 2 and app.in_flight == 1  # health reached the app, uncounted
        held.release.set()
        with pytest.raises(RuntimeError):
            await failing
        assert _status(await health) == 200
        assert app.in_flight == 0 and app.shed == 0

    asyncio.run(scenario())


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        InFlightLimitMiddleware(HeldApp(), limit=0)
