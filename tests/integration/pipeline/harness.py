"""Helpers of the pipeline tests: write events as the API does, run private consumers, read results."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import text

from app.adapters.db import api_engine
from app.adapters.envelope_codec import EnvelopeCodec
from app.config import get_settings
from app.service_layer.unit_of_work import AuditEntry, OutboxEvent, UnitOfWork
from generated.events import EVENT_MODELS
from tools import db
from workers.consumer_loop import ConsumerLoop


@dataclass
class Fleet:
    tenant_id: str
    user_id: str


def new_fleets(tag: str, n: int, tenants: int = 1) -> list[Fleet]:
    """`n` users of this test alone, spread over `tenants` tenants."""
    suffix = uuid.uuid4().hex[:8]
    fleets = [Fleet(f"t-{tag}-{suffix}-{i % tenants}", f"u-{tag}-{suffix}-{i}") for i in range(n)]
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        for f in fleets:
            cur.execute("INSERT INTO users (id, tenant_id, display_name) VALUES (%s, %s, %s)",
                        (f.user_id, f.tenant_id, tag))
    return fleets


def add_miner(fleet: Fleet, model_id: str = "antminer-s21", status: str = "active") -> str:
    """Insert a miner and its miner.added event in one unit of work, as POST /api/miners does."""
    miner_id = str(uuid.uuid4())
    with UnitOfWork(api_engine(), fleet.tenant_id) as uow:
        uow.conn.execute(
            text("INSERT INTO miners (id, tenant_id, model_id, label, status) VALUES (:id, :t, :m, 'test', :s)"),
            {"id": miner_id, "t": fleet.tenant_id, "m": model_id, "s": status},
        )
        uow.conn.execute(
            text("INSERT INTO user_miners (tenant_id, user_id, miner_id) VALUES (:t, :u, :id)"),
            {"t": fleet.tenant_id, "u": fleet.user_id, "id": miner_id},
        )
        payload = EVENT_MODELS["miner.added"].model_validate(
            {"miner_id": miner_id, "model_id": model_id, "status": status, "label": "test",
             "serial_number": None, "hashrate_ths": 200.0, "power_w": 3500}
        )
        uow.emit(OutboxEvent("miner.added", fleet.user_id, payload, entity_id=miner_id))
        uow.audit(AuditEntry("miner.create", fleet.user_id, entity_type="miner", entity_id=miner_id))
        uow.commit()
    return miner_id


def change_status(fleet: Fleet, miner_id: str, to_status: str) -> str:
    with UnitOfWork(api_engine(), fleet.tenant_id) as uow:
        from_status = uow.conn.execute(
            text("UPDATE miners m SET status = :s FROM miners old WHERE m.id = old.id AND m.id = :id "
                 "RETURNING old.status"),
            {"s": to_status, "id": miner_id},
        ).scalar_one()
        payload = EVENT_MODELS["miner.status_changed"].model_validate(
            {"miner_id": miner_id, "from_status": from_status, "to_status": to_status, "reason": "test"}
        )
        event = uow.emit(OutboxEvent("miner.status_changed", fleet.user_id, payload, entity_id=miner_id))
        uow.audit(AuditEntry("miner.status_change", fleet.user_id, entity_type="miner", entity_id=miner_id))
        uow.commit()
    return event.id


def start_group_at_end(group: str, topic_names: list[str]) -> None:
    """Commit the current end offsets for a new group, so it reads only what is produced from now on."""
    settings = get_settings()
    c = Consumer({"bootstrap.servers": settings.kafka_brokers, "group.id": group, "enable.auto.commit": False})
    try:
        offsets = []
        for name in topic_names:
            meta = c.list_topics(name, timeout=10).topics[name]
            for p in meta.partitions:
                _low, high = c.get_watermark_offsets(TopicPartition(name, p), timeout=10, cached=False)
                offsets.append(TopicPartition(name, p, high))
        c.commit(offsets=offsets, asynchronous=False)
    finally:
        c.close()


def private(handler_cls: type, tag: str):
    """A handler of `handler_cls` under a name (consumer group and inbox name) of this test alone."""
    handler = handler_cls()
    handler.name = f"test.{tag}.{uuid.uuid4().hex[:8]}"
    start_group_at_end(handler.name, list(handler.topics))
    return handler


def run_until(loop: ConsumerLoop, done: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    loop.run(until=lambda: done() or time.monotonic() > deadline)
    assert done(), f"condition not reached in {timeout:.0f}s; loop stats: {loop.stats}"


def inbox_count(consumer: str, event_ids: list[str]) -> int:
    """Read as the superuser: the inbox is under RLS, and the test looks across tenants."""
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM consumer_inbox WHERE consumer_name = %s AND event_id = ANY(%s)",
                    (consumer, event_ids))
        return cur.fetchone()[0]


def portfolio_row(fleet: Fleet) -> dict | None:
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT miners_total, miners_by_status, daily_btc, last_event_id FROM user_portfolio "
                    "WHERE tenant_id = %s AND user_id = %s", (fleet.tenant_id, fleet.user_id))
        row = cur.fetchone()
    if row is None:
        return None
    return {"miners_total": row[0], "miners_by_status": row[1], "daily_btc": row[2], "last_event_id": row[3]}


def records_for(user_id: str, topic: str = "events.miner", timeout: float = 30.0, want: int = 1):
    """Every record of `user_id` on `topic` (read from the start with a throwaway group)."""
    codec = EnvelopeCodec(get_settings().schema_registry_url)
    c = Consumer({"bootstrap.servers": get_settings().kafka_brokers, "group.id": f"probe-{uuid.uuid4()}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    found = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(found) < want:
            for msg in c.consume(num_messages=500, timeout=0.5):
                if not msg.error() and msg.key() == user_id.encode():
                    found.append((msg, codec.decode(msg.topic(), msg.value())))
    finally:
        c.close()
    return found


def prepare_pipeline() -> None:
    """Schema migrated, reference data seeded, topics from the contract, connector registered and running."""
    from app.adapters.kafka_connect import ConnectClient
    from tools import connect as connect_tool
    from tools import migrate, seed, topics

    assert migrate.main([]) == 0
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM network_snapshots")
        if cur.fetchone()[0] == 0:
            assert seed.main(["--size", "small"]) == 0
    assert topics.main([]) == 0
    assert connect_tool.main(["register"]) == 0
    ConnectClient(get_settings().connect_url).wait_running("hashinsight-outbox", timeout=60)
