"""The consumers tell a user's open pages what changed: Redis channel page:{user_id}, the documented message."""

from __future__ import annotations

import json
import time

import redis

from app.config import get_settings
from tests.integration.pipeline.harness import add_miner, private, run_until
from workers.consumer_loop import ConsumerLoop
from workers.intel_consumer import IntelHandler
from workers.portfolio_consumer import PortfolioHandler


def _messages(pubsub, consumer: str, want: int, timeout: float = 10.0) -> list[dict]:
    """The messages of `consumer` (the stack's own workers, when running, notify the same page too)."""
    found, deadline = [], time.monotonic() + timeout
    while len(found) < want and time.monotonic() < deadline:
        msg = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if msg and json.loads(msg["data"])["consumer"] == consumer:
            found.append(json.loads(msg["data"]))
    return found


def test_each_consumer_publishes_its_commit_after_invalidating(fleet):
    r = redis.Redis.from_url(get_settings().redis_url)
    pubsub = r.pubsub()
    pubsub.subscribe(f"page:{fleet.user_id}")
    pubsub.get_message(timeout=2)  # the subscribe confirmation
    r.set(f"user_portfolio:{fleet.user_id}", "stale")
    handlers = [(private(PortfolioHandler, "notify"), [f"user_portfolio:{fleet.user_id}",
                                                        f"user_analytics:{fleet.user_id}"]),
                (private(IntelHandler, "notify"), [f"forecast:{fleet.user_id}"])]
    miner_id = add_miner(fleet)
    before = time.time()
    for handler, keys in handlers:
        loop = ConsumerLoop(handler)
        run_until(loop, lambda loop=loop: loop.stats.applied >= 1)
        (note,) = _messages(pubsub, handler.name, 1)
        assert set(note) == {"user_id", "tenant_id", "consumer", "keys", "event_ids", "entity_ids", "committed_at"}
        assert (note["user_id"], note["tenant_id"], note["consumer"]) == (fleet.user_id, fleet.tenant_id, handler.name)
        assert note["keys"] == keys and note["entity_ids"] == [miner_id] and len(note["event_ids"]) == 1
        assert isinstance(note["committed_at"], float) and before - 60 < note["committed_at"] <= time.time()
    # Published after the invalidation, in the same round trip: whoever reads on the message misses the cache.
    assert r.get(f"user_portfolio:{fleet.user_id}") is None
    pubsub.close()
