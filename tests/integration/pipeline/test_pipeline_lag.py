"""The page's worker tells the web how far behind it is (app/adapters/pipeline_lag.py): a batch that commits an
event older than the floor writes its lag to Redis, where the web's freshness guard reads it."""

from __future__ import annotations

import time

from app.adapters.pipeline_lag import KEY, LagPublisher
from app.adapters.redis_client import get_redis
from tests.integration.pipeline.harness import add_miner, private, records_for, run_until
from workers.consumer_loop import ConsumerLoop
from workers.portfolio_consumer import PortfolioHandler


def test_a_worker_behind_writes_its_lag_for_the_web(fleet):
    redis = get_redis()
    redis.delete(KEY)
    handler = private(PortfolioHandler, "lag")
    assert handler.reports_lag
    loop = ConsumerLoop(handler)
    loop.telemetry.lag = LagPublisher(redis)  # as workers.consumer_loop.main does for the live worker
    try:
        add_miner(fleet)
        committed = time.time()
        records_for(fleet.user_id, want=1)  # on Kafka: the connector is not what is late
        time.sleep(max(0.0, committed + 2.0 - time.time()))  # the worker is 2 s behind
        run_until(loop, lambda: loop.stats.applied >= 1, timeout=30)
        written = time.time()
        lag = float(redis.get(KEY))
        ttl_ms = redis.pttl(KEY)
    finally:
        redis.delete(KEY)
    assert 2000 <= lag <= 1000 * (written - committed) + 50, lag
    assert 0 < ttl_ms <= 1500  # it expires: a worker that stops leaves no stale figure
