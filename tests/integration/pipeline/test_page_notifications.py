"""The consumers tell a user's open pages what changed: Redis channel page:{user_id}, the documented message."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone

import redis

from app.adapters import cache
from app.adapters.db import api_engine, worker_engine
from app.adapters.envelope_codec import Envelope
from app.config import get_settings
from app.service_layer import read_models
from app.service_layer.unit_of_work import UnitOfWork
from generated.events import EVENT_MODELS
from tests.integration.pipeline.harness import add_miner, private, run_until
from tools import db
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
    # Published after the cache step, in the same round trip: whoever reads on the message finds the new figures
    # (written through by a portfolio consumer, the stack's or this test's) or loads them; never the old value.
    raw = r.get(f"user_portfolio:{fleet.user_id}")
    assert raw != b"stale"
    if raw is not None:
        assert json.loads(raw)["v"] == _loaded(fleet)
    pubsub.close()


def _loaded(fleet) -> dict:
    """What GET /api/portfolio would load from the committed rows (the cache's JSON form)."""
    return json.loads(cache.encode(read_models.load_portfolio(api_engine(), fleet.tenant_id, fleet.user_id)))


def _miner_added(fleet, model_id: str) -> Envelope:
    """A miner written straight to the tables, without an outbox row (no other consumer sees it), and the event
    a consumer would have read for it."""
    miner_id = str(uuid.uuid4())
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO miners (id, tenant_id, model_id, label, status) VALUES (%s, %s, %s, 'wt', 'active')",
                    (miner_id, fleet.tenant_id, model_id))
        cur.execute("INSERT INTO user_miners (tenant_id, user_id, miner_id) VALUES (%s, %s, %s)",
                    (fleet.tenant_id, fleet.user_id, miner_id))
    payload = EVENT_MODELS["miner.added"].model_validate(
        {"miner_id": miner_id, "model_id": model_id, "status": "active", "label": "wt", "serial_number": None,
         "hashrate_ths": 200.0, "power_w": 3500})
    return Envelope(str(uuid.uuid4()), "miner.added", fleet.user_id, fleet.tenant_id, miner_id, payload, None,
                    datetime.now(timezone.utc), None)


def _apply_and_commit(handler: PortfolioHandler, fleet, events: list[Envelope], between=None) -> None:
    with UnitOfWork(worker_engine(), fleet.tenant_id) as uow:
        applied = handler.apply(uow, {fleet.user_id: events})
        uow.commit()
    if between:
        between()
    handler.after_commit(fleet.tenant_id, {fleet.user_id: events}, applied)


def test_the_portfolio_consumer_writes_the_page_cache_through_with_what_a_load_would_read(fleet):
    """After a recalculation the page's cache entry is already the new document, equal to what a load from the
    committed rows builds (two models: the breakdown's order too), so the notified page reads a hit."""
    r = redis.Redis.from_url(get_settings().redis_url)
    key = f"user_portfolio:{fleet.user_id}"
    handler = PortfolioHandler()
    _apply_and_commit(handler, fleet, [_miner_added(fleet, "antminer-s21"), _miner_added(fleet, "antminer-s19-pro")])
    raw = r.get(key)
    assert raw is not None, "the consumer did not write the page cache through"
    entry = json.loads(raw)
    assert entry["v"] == _loaded(fleet)
    assert entry["v"]["portfolio"]["miners_total"] == 2 and len(entry["v"]["portfolio"]["by_model"]) == 2
    view = read_models.portfolio_view(fleet.tenant_id, fleet.user_id, cache=cache.Cache(r))
    assert view.cache_status == cache.FRESH and view.document["miners_total"] == 2


def test_a_write_through_after_another_writers_invalidation_drops_the_entry_instead(fleet):
    """Another writer bumped the generation between our read of it and our after-commit step (a newer
    recalculation, a fan-out): our document may be older than what the rows now hold, so it is not stored."""
    r = redis.Redis.from_url(get_settings().redis_url)
    key = f"user_portfolio:{fleet.user_id}"
    handler = PortfolioHandler()
    _apply_and_commit(handler, fleet, [_miner_added(fleet, "antminer-s21")],
                      between=lambda: cache.Cache(r).invalidate(key, strict=True))
    assert r.get(key) is None
    _apply_and_commit(handler, fleet, [_miner_added(fleet, "antminer-s21")])  # nobody in between: stored
    assert json.loads(r.get(key))["v"]["portfolio"]["miners_total"] == 2
