"""A rebalance that lands while a consumer waits out a transient failure.

While it retries, the loop pauses its partitions and keeps polling, so the group keeps it as a member. A partition
assigned to it in that time (a peer left) is not paused yet and may hand over a record before the loop can pause
it. That record must open the next batch: were it given back with a seek and then paused, the pause would keep
the position after it and the record would never be applied, though later offsets of its partition are
committed past it.
"""

from __future__ import annotations

import threading
import time
import uuid

from app.adapters.redis_client import get_redis
from app.adapters.redis_lock import recalc_lock_key
from app.config import get_settings
from tests.integration.pipeline.harness import add_miner, new_fleets, start_group_at_end
from tools import db
from workers.consumer_loop import ConsumerLoop
from workers.portfolio_consumer import PortfolioHandler

FAST = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}  # the broker's minimum session
USERS = 16


def _applied(group: str, tenant: str) -> int:
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM consumer_inbox WHERE consumer_name = %s AND tenant_id = %s", (group, tenant))
        return cur.fetchone()[0]


def _handler(name: str) -> PortfolioHandler:
    handler = PortfolioHandler()
    handler.name = name
    return handler


def _wait(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"not reached in {timeout:.0f} s: {what}"
        time.sleep(0.2)


def test_records_of_a_partition_assigned_during_a_retry_wait_are_all_applied(pipeline):
    group = f"test.held.{uuid.uuid4().hex[:8]}"
    start_group_at_end(group, list(PortfolioHandler.topics))
    fleets = new_fleets("held", USERS)
    redis = get_redis(get_settings().redis_url)
    stay = ConsumerLoop(_handler(group), lock_wait_s=0.3, backoff_max=0.5, extra_consumer_config=FAST)
    leave = ConsumerLoop(_handler(group), lock_wait_s=0.3, backoff_max=0.5, extra_consumer_config=FAST)
    written = 0
    done = threading.Event()
    threads = [threading.Thread(target=stay.run, kwargs={"until": done.is_set}, daemon=True),
               threading.Thread(target=leave.run, daemon=True)]
    for t in threads:
        t.start()
    try:
        _wait(lambda: stay.owned and leave.owned, 60, "both consumers assigned")
        # Another holder keeps every user's lock: both consumers read their first records and wait in retries.
        for f in fleets:
            redis.set(recalc_lock_key(f.user_id), "someone-else", px=120_000)
        written += len([add_miner(f) for f in fleets])
        _wait(lambda: stay.stats.retries > 0 and leave.stats.retries > 0, 60, "both consumers retrying")
        # One leaves mid-retry; the group hands its partitions to the one still waiting.
        theirs = set(leave.owned)
        leave.request_stop()
        threads[1].join(30)
        assert not threads[1].is_alive()
        _wait(lambda: theirs <= stay.owned, 60, "the partitions moved to the waiting consumer")
        time.sleep(2)  # the moved partitions deliver while the consumer still waits
        assert stay.stats.applied == 0
        redis.delete(*[recalc_lock_key(f.user_id) for f in fleets])
        written += len([add_miner(f) for f in fleets])
        tenant = fleets[0].tenant_id
        _wait(lambda: _applied(group, tenant) == written, 60, "every event applied")
        assert stay.stats.applied == written, stay.stats
    finally:
        done.set()
        leave.request_stop()
        redis.delete(*[recalc_lock_key(f.user_id) for f in fleets])
        for t in threads:
            t.join(30)
