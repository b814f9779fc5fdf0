"""The product's promise, through the real API: POST /api/miners -> Debezium -> Kafka -> consumer -> page."""

from __future__ import annotations

import json
import time

from starlette.testclient import TestClient

from app.adapters.page_events import channel
from app.adapters.rate_limit import RateLimiter
from app.adapters.redis_client import get_redis
from app.adapters.tokens import encode_token
from app.entrypoints.app import create_app
from tests.integration.pipeline.harness import private, run_until
from workers.consumer_loop import ConsumerLoop
from workers.portfolio_consumer import PortfolioHandler


def test_a_post_reaches_the_page_through_the_bus(fleet):
    handler = private(PortfolioHandler, "post")
    app = create_app(rate_limiter=RateLimiter(enabled=False))
    token = encode_token(fleet.user_id, fleet.tenant_id, ["miners:write", "portfolio:read"])
    headers = {"Authorization": f"Bearer {token}"}
    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel(fleet.user_id))
    with TestClient(app, raise_server_exceptions=False) as client:
        before = client.get("/api/portfolio", headers=headers)
        assert before.status_code == 200, before.text
        assert before.json()["miners_total"] == 0

        created = client.post("/api/miners", json={"model_id": "antminer-s21", "label": "e2e"}, headers=headers)
        assert created.status_code == 201, created.text
        miner_id = created.json()["id"]
        committed = time.monotonic()

        loop = ConsumerLoop(handler)
        run_until(loop, lambda: loop.stats.applied >= 1, timeout=30)
        after = client.get("/api/portfolio", headers=headers)
        elapsed = time.monotonic() - committed
        health = client.get("/api/health").json()
    message = None
    deadline = time.monotonic() + 5
    while message is None and time.monotonic() < deadline:  # None also for the (ignored) subscribe reply
        candidate = pubsub.get_message(timeout=1)
        if candidate and json.loads(candidate["data"])["consumer"] == handler.name:
            message = candidate
    pubsub.close()

    body = after.json()
    assert body["miners_total"] == 1
    assert body["by_model"][0]["model_id"] == "antminer-s21"
    assert body["last_event_id"] is not None
    assert elapsed < 3.0, f"commit to page took {elapsed:.2f}s"
    assert miner_id
    # The page is told, with what changed and when it was committed.
    assert message is not None, "no page notification"
    note = json.loads(message["data"])
    assert note["user_id"] == fleet.user_id and note["tenant_id"] == fleet.tenant_id
    assert note["consumer"] == handler.name and note["entity_ids"] == [miner_id]
    assert note["keys"] == [f"user_portfolio:{fleet.user_id}", f"user_analytics:{fleet.user_id}"]
    assert note["event_ids"] == [body["last_event_id"]] and note["committed_at"] <= time.time()
    # With the connector running, health reports its slot and state.
    assert health["connector_state"] == "RUNNING"
    assert isinstance(health["replication_slot_lag_bytes"], int) and health["replication_slot_lag_bytes"] >= 0
