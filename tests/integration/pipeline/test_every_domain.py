"""Every domain through the real bus: market fan-out, maintenance windows, plan changes.

Writes go through the real API (in-process, on the stack database the connector captures); Debezium carries the
events to Kafka; the real handlers run in-process under names of their own (harness.private).
"""

from __future__ import annotations

import time
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import text
from starlette.testclient import TestClient

from app.adapters.cache import ops_schedule_key
from app.adapters.db import api_engine, worker_engine
from app.adapters.rate_limit import RateLimiter
from app.adapters.redis_client import get_redis
from app.adapters.tokens import Principal, encode_token
from app.config import get_settings
from app.entrypoints.app import create_app
from app.service_layer.unit_of_work import OutboxEvent, UnitOfWork
from app.service_layer.users import UserDirectory
from generated.events import CrmSubscriptionChanged
from tests.integration.pipeline.harness import private, run_until
from tools import db
from workers.consumer_loop import ConsumerLoop
from workers.intel_consumer import IntelHandler
from workers.portfolio_consumer import PortfolioHandler

ALL = "miners:read miners:write portfolio:read intel:read ops:read ops:write market:write billing:write"


@pytest.fixture
def client(pipeline):
    with TestClient(create_app(rate_limiter=RateLimiter(enabled=False), user_directory=UserDirectory()),
                    raise_server_exceptions=False) as c:
        yield c


def _headers(user: str, tenant: str, scopes: str = ALL) -> dict[str, str]:
    return {"Authorization": f"Bearer {encode_token(user, tenant, scopes)}"}


def _population(tenants: int, users: int) -> list[tuple[str, str]]:
    """`users` users in each of `tenants` fresh tenants, each with one active miner (seeded as the seed does)."""
    tag = uuid.uuid4().hex[:8]
    people = [(f"t-fan-{tag}-{t}", f"u-fan-{tag}-{t}-{u}") for t in range(tenants) for u in range(users)]
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        for tenant, user in people:
            miner = str(uuid.uuid4())
            cur.execute("INSERT INTO users (id, tenant_id) VALUES (%s, %s)", (user, tenant))
            cur.execute("INSERT INTO miners (id, tenant_id, model_id) VALUES (%s, %s, 'antminer-s21')", (miner, tenant))
            cur.execute("INSERT INTO user_miners (tenant_id, user_id, miner_id) VALUES (%s, %s, %s)",
                        (tenant, user, miner))
    return people


def _latest() -> tuple[float, float, float]:
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT btc_price_usd, difficulty, block_reward_btc FROM network_latest")
        return cur.fetchone()


def _end_offsets(topic: str) -> int:
    c = Consumer({"bootstrap.servers": get_settings().kafka_brokers, "group.id": f"probe-{uuid.uuid4().hex}"})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1] for p in parts)
    finally:
        c.close()


def _wait_for_records(topic: str, at_least: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while _end_offsets(topic) < at_least:
        assert time.monotonic() < deadline, f"{topic} never reached {at_least} records"
        time.sleep(0.1)


def test_a_market_snapshot_reprices_every_user_of_every_tenant(client):
    people = _population(tenants=3, users=15)
    before = {u: client.get("/api/portfolio", headers=_headers(u, t)) for t, u in people}  # warm caches
    assert all(r.status_code == 200 for r in before.values())
    price, difficulty, reward = _latest()
    portfolio, intel = private(PortfolioHandler, "fan"), private(IntelHandler, "fan")
    start = _end_offsets("events.market")

    # Two snapshots before any consumer runs: one batch, one fan-out, priced with the newest.
    operator = _headers(f"u-feed-{uuid.uuid4().hex[:6]}", "t-market-feed", "market:write")
    new_prices = (round(price * 1.01, 2), round(price * 1.05, 2))
    for p in new_prices:
        resp = client.post("/api/market/snapshots", headers=operator,
                           json={"btc_price_usd": p, "difficulty": difficulty, "block_reward_btc": reward})
        assert resp.status_code == 201, resp.text
    ts = resp.json()["ts"]
    _wait_for_records("events.market", start + 2)

    for handler in (portfolio, intel):
        loop = ConsumerLoop(handler)
        run_until(loop, lambda loop=loop: loop.stats.applied >= 2, timeout=60)
        assert handler.fanout.runs == 1, "two snapshots in one batch should make one fan-out"

    for tenant, user in people:
        doc = client.get("/api/portfolio", headers=_headers(user, tenant)).json()
        assert doc["network"]["btc_price_usd"] == new_prices[-1], (user, doc["network"])
        assert doc["network"]["ts"] == ts
    today = datetime.now(timezone.utc).date()
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("""SELECT count(*) FROM forecast_daily WHERE user_id = ANY(%s) AND day = %s
                         AND btc_price_usd = %s""", ([u for _, u in people], today, new_prices[-1]))
        assert cur.fetchone()[0] == len(people)
        cur.execute("SELECT count(DISTINCT tenant_id) FROM user_portfolio WHERE snapshot_ts = %s", (ts,))
        assert cur.fetchone()[0] >= 3


def _at(day: date, hour: int) -> str:
    return datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")


def test_a_maintenance_window_invalidates_exactly_its_days_and_is_forecast_downtime(client, fleet):
    headers = _headers(fleet.user_id, fleet.tenant_id)
    intel = private(IntelHandler, "ops")
    miner = client.post("/api/miners", json={"model_id": "antminer-s21"}, headers=headers)
    assert miner.status_code == 201, miner.text
    d1 = datetime.now(timezone.utc).date() + timedelta(days=2)
    d2, d3 = d1 + timedelta(days=1), d1 + timedelta(days=2)
    for d in (d1, d2, d3):  # three cached days
        assert client.get("/api/ops/schedule", params={"day": d.isoformat()}, headers=headers).json()["windows"] == []
    redis = get_redis()
    assert all(redis.exists(ops_schedule_key(fleet.user_id, d)) for d in (d1, d2, d3))

    resp = client.post("/api/ops/maintenance", headers=headers, json={
        "miner_id": miner.json()["id"], "starts_at": _at(d1, 22), "ends_at": _at(d2, 2), "reason": "fans"})
    assert resp.status_code == 201, resp.text
    loop = ConsumerLoop(intel)
    run_until(loop, lambda: loop.stats.applied >= 2, timeout=60)  # miner.added, ops.maintenance_scheduled

    assert not redis.exists(ops_schedule_key(fleet.user_id, d1))
    assert not redis.exists(ops_schedule_key(fleet.user_id, d2))
    assert redis.exists(ops_schedule_key(fleet.user_id, d3)), "a day the window does not touch stays cached"
    shown = client.get("/api/ops/schedule", params={"day": d2.isoformat()}, headers=headers).json()
    assert [w["id"] for w in shown["windows"]] == [resp.json()["id"]]

    # btc ~ hashrate / difficulty: with 2 of 24 hours down on d1 and on d2, their btc x difficulty is 22/24
    # of an untouched day's.
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT day, btc_mined * difficulty, cost_usd FROM forecast_daily WHERE user_id = %s "
                    "AND day = ANY(%s) ORDER BY day", (fleet.user_id, [d1, d2, d3]))
        rows = {r[0]: (r[1], r[2]) for r in cur.fetchall()}
    full = rows[d3]
    for d in (d1, d2):
        assert rows[d][0] / full[0] == pytest.approx(22 / 24, rel=1e-9)
        assert rows[d][1] / full[1] == pytest.approx(22 / 24, rel=1e-9)


def test_a_plan_change_reaches_every_listening_web_process_through_the_consumer(pipeline, fleet):
    """The event alone (not the API's own announcement) makes a listening process drop its cached plan."""
    directory = UserDirectory(listen_for_plan_changes=True)
    principal = Principal(fleet.user_id, fleet.tenant_id, frozenset({"portfolio:read"}), None)
    assert directory.ensure(principal).name == "free"
    assert directory._listener is not None and directory._listener.subscribed.wait(5)
    portfolio = private(PortfolioHandler, "crm")
    with UnitOfWork(api_engine(), fleet.tenant_id) as uow:
        uow.conn.execute(text("""INSERT INTO user_subscriptions (tenant_id, user_id, plan, requests_per_minute, burst)
                                 VALUES (:t, :u, 'pro', 600, 100)"""), {"t": fleet.tenant_id, "u": fleet.user_id})
        uow.emit(OutboxEvent("crm.subscription_changed", fleet.user_id,
                             CrmSubscriptionChanged(plan="pro", requests_per_minute=600, burst=100,
                                                    previous_plan="free")))
        uow.commit()
    # (Where the stack's own portfolio worker runs too, it may announce the change first; in `make test` only
    # this test's consumer reads the event.)
    loop = ConsumerLoop(portfolio)
    run_until(loop, lambda: loop.stats.applied >= 1, timeout=60)
    applied = time.monotonic()
    while directory.plan_changes_heard == 0 and time.monotonic() - applied < 1.0:
        time.sleep(0.01)
    assert directory.plan_changes_heard >= 1, "the plan change did not reach the process within 1 s"
    assert directory.ensure(principal).name == "pro"
    directory._listener.stop()


def test_the_fanout_lock_is_one_per_tenant_not_one_per_user(pipeline):
    """A fan-out over many users holds one advisory lock per tenant (the shared lock table stays small)."""
    handler = PortfolioHandler()
    with UnitOfWork(worker_engine(), "t-lock-probe") as uow:
        fanned = handler.fanout.run(uow)
        locks = uow.conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                      "AND pid = pg_backend_pid()")).scalar_one()
    assert fanned and locks == len(fanned)
    assert sum(len(u) for u in fanned.values()) > locks
