"""GET /analytics/stream over real HTTP (uvicorn, 2 workers): the consumers' page notifications reach the page."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import redis

from app.adapters import page_events
from app.config import get_settings


def _events(lines: Iterator[str], deadline: float) -> Iterator[tuple[str, str]]:
    """(event name, data) pairs of a text/event-stream; comments and retry lines skipped."""
    name, data = None, []
    for line in lines:
        if time.monotonic() > deadline:
            raise AssertionError("stream event not seen in time")
        if line == "":
            if name:
                yield name, "\n".join(data)
            name, data = None, []
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])


def test_the_stream_needs_credentials(server):
    r = httpx.get(server.base_url + "/analytics/stream", timeout=10)
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"


def test_the_stream_relays_this_users_notifications_and_only_those(server, user, make_user):
    other = make_user(tenant_id=user.tenant_id)
    r = redis.Redis.from_url(get_settings().redis_url)
    mine = page_events.message(user.user_id, user.tenant_id, "hashinsight.portfolio",
                               [f"user_portfolio:{user.user_id}"], [], 1736933400.5)
    theirs = page_events.message(other.user_id, user.tenant_id, "hashinsight.portfolio", [], [], 1.0)
    headers = user.headers("portfolio:read")
    with httpx.Client(base_url=server.base_url, timeout=httpx.Timeout(10, read=20)) as c, \
            c.stream("GET", "/analytics/stream", headers=headers) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["cache-control"] == "no-store"
        events = _events(resp.iter_lines(), time.monotonic() + 20)
        name, data = next(events)
        assert name == "ready" and json.loads(data)["channel"] == f"page:{user.user_id}"
        # Subscribed: now the consumers' messages flow (another user's stay on their channel).
        assert r.publish(page_events.channel(other.user_id), theirs) == 0
        assert r.publish(page_events.channel(user.user_id), mine) == 1
        name, data = next(events)
        assert name == "invalidated"
        assert json.loads(data) == json.loads(mine)
    # The server noticed the client leaving: nobody is subscribed any more.
    deadline = time.monotonic() + 10
    while r.pubsub_numsub(page_events.channel(user.user_id))[0][1] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert r.pubsub_numsub(page_events.channel(user.user_id))[0][1] == 0
    metrics = httpx.get(server.base_url + "/metrics", timeout=10).text
    assert "hashinsight_page_streams_open 0.0" in metrics


def test_the_stream_needs_portfolio_read(server, user):
    r = httpx.get(server.base_url + "/analytics/stream", headers=user.headers("miners:read"), timeout=10)
    assert r.status_code == 403
