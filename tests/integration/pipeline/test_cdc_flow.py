"""Outbox -> Debezium -> Kafka -> consumer, on the real stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import fastavro
import requests
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient

from app.adapters.dead_letters import DLQ_TOPIC, DeadLetterQueue
from app.adapters.kafka_health import KafkaHealth
from app.config import get_settings
from generated.events import ENVELOPE_SCHEMA
from tests.integration.pipeline.harness import (
    add_miner,
    change_status,
    inbox_count,
    portfolio_row,
    private,
    records_for,
    run_until,
)
from tools import db
from workers.consumer_loop import ConsumerLoop
from workers.portfolio_consumer import PortfolioHandler

ROOT = Path(__file__).resolve().parents[3]
FAST = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}  # the broker's minimum session
settings = get_settings()


def _strip(schema):
    """Avro schema reduced to what decides compatibility: field names (resolution is by name, not position),
    types, nullability."""
    if isinstance(schema, dict):
        if schema.get("type") == "record":
            return {"record": sorted((f["name"], _strip(f["type"])) for f in schema["fields"])}
        return _strip(schema["type"]) if "type" in schema else schema
    if isinstance(schema, list):
        return sorted(_strip(s) for s in schema)
    return schema


def test_an_outbox_row_becomes_one_avro_record_keyed_by_user_matching_the_contract(fleet):
    miner_id = add_miner(fleet)
    records = records_for(fleet.user_id)
    assert len(records) == 1
    msg, envelope = records[0]
    assert msg.topic() == "events.miner"
    assert msg.key() == fleet.user_id.encode()
    assert envelope.kind == "miner.added" and envelope.entity_id == miner_id
    assert envelope.tenant_id == fleet.tenant_id
    assert str(envelope.payload.miner_id) == miner_id

    # The schema the converter registered for the topic is the contract's envelope, field for field.
    schema_id = int.from_bytes(msg.value()[1:5], "big")
    registered = json.loads(
        requests.get(f"{settings.schema_registry_url}/schemas/ids/{schema_id}", timeout=10).json()["schema"]
    )
    contract = json.loads(ENVELOPE_SCHEMA.read_text())
    assert registered["name"] == "EventEnvelope" and registered["namespace"] == "io.hashinsight.events"
    assert _strip(fastavro.parse_schema(registered)) == _strip(fastavro.parse_schema(contract))


def test_per_user_order_is_kept_from_commit_to_consumer(fleet):
    miner_id = add_miner(fleet)
    ids = [change_status(fleet, miner_id, s) for s in ("idle", "maintenance", "active", "offline")]
    records = records_for(fleet.user_id, want=5)
    kinds = [(e.kind, getattr(e.payload, "to_status", None)) for _m, e in records]
    assert [k for k, _ in kinds] == ["miner.added"] + ["miner.status_changed"] * 4
    assert [str(s.value) if s else None for _, s in kinds[1:]] == ["idle", "maintenance", "active", "offline"]
    assert len({m.partition() for m, _ in records}) == 1
    offsets = [m.offset() for m, _ in records]
    assert offsets == sorted(offsets)
    assert [e.id for _m, e in records[1:]] == ids

    handler = private(PortfolioHandler, "order")
    # Started at the end: rewind this group to the user's first record so it sees all five.
    first = records[0][0]
    c = Consumer({"bootstrap.servers": settings.kafka_brokers, "group.id": handler.name, "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(first.topic(), first.partition(), first.offset())], asynchronous=False)
    c.close()
    loop = ConsumerLoop(handler, batch_size=1)  # one record per batch: order is the loop's, not coalescing's
    run_until(loop, lambda: inbox_count(handler.name, [e.id for _m, e in records]) == 5)
    row = portfolio_row(fleet)
    assert row["miners_by_status"]["offline"] == 1 and row["miners_by_status"]["active"] == 0
    assert row["last_event_id"] == ids[-1]


def test_events_of_one_user_in_a_batch_coalesce_into_one_recalculation(fleet):
    handler = private(PortfolioHandler, "coalesce")
    ids = [add_miner(fleet) for _ in range(5)]
    records_for(fleet.user_id, want=5)  # all five are on Kafka before the consumer starts
    loop = ConsumerLoop(handler)
    run_until(loop, lambda: loop.stats.applied >= 5)
    assert loop.stats.recalculations == 1, loop.stats
    assert portfolio_row(fleet)["miners_total"] == len(ids)


def test_a_consumer_killed_after_its_db_commit_applies_the_event_once(fleet):
    handler = private(PortfolioHandler, "crash")
    add_miner(fleet)
    (_msg, envelope), = records_for(fleet.user_id)
    script = (
        "import sys; from workers.consumer_loop import ConsumerLoop;"
        "from workers.portfolio_consumer import PortfolioHandler;"
        f"h = PortfolioHandler(); h.name = {handler.name!r}; ConsumerLoop(h, extra_consumer_config={FAST!r}).run()"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HASHINSIGHT_FAILPOINT": "crash_after_db_commit"})
    assert proc.returncode == 17, proc.stderr[-2000:]
    assert inbox_count(handler.name, [envelope.id]) == 1  # the effect and its mark were committed

    # The restart: the offset was never committed, so the event comes again once the dead member's session
    # has expired and its partitions are reassigned.
    loop = ConsumerLoop(handler, extra_consumer_config=FAST)
    run_until(loop, lambda: loop.stats.duplicates >= 1)
    assert loop.stats.applied == 0 and loop.stats.recalculations == 0
    assert inbox_count(handler.name, [envelope.id]) == 1


def test_a_poison_record_goes_to_the_dlq_with_its_reason_and_later_records_flow(fleet):
    handler = private(PortfolioHandler, "poison")
    producer = Producer({"bootstrap.servers": settings.kafka_brokers})
    producer.produce("events.miner", key=fleet.user_id.encode(), value=b"not avro at all")
    producer.flush(10)
    add_miner(fleet)
    health = KafkaHealth(settings.kafka_brokers)
    dlq_before = health.dlq_count()

    loop = ConsumerLoop(handler)
    run_until(loop, lambda: loop.stats.applied >= 1 and loop.stats.dead_lettered >= 1)
    assert portfolio_row(fleet)["miners_total"] == 1
    assert health.dlq_count() >= dlq_before + 1  # live workers, if running, dead-letter it too
    assert health.dlq_recent(60) >= 1

    dlq = DeadLetterQueue(producer, SchemaRegistryClient({"url": settings.schema_registry_url}))
    c = Consumer({"bootstrap.servers": settings.kafka_brokers, "group.id": f"probe-{uuid.uuid4()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([DLQ_TOPIC])
    letter = None
    deadline = time.monotonic() + 30
    while letter is None and time.monotonic() < deadline:
        for msg in c.consume(num_messages=500, timeout=0.5):
            if msg.error():
                continue
            candidate = dlq.decode(msg.value())
            if candidate.consumer == handler.name:
                letter, headers = candidate, dict(msg.headers())
    c.close()
    health.close()
    assert letter is not None, "no dead letter from this consumer"
    assert letter.original_value == b"not avro at all"
    assert letter.original_topic == "events.miner" and letter.original_key == fleet.user_id.encode()
    assert "magic byte" in letter.error
    assert headers["dlq.original.topic"] == b"events.miner"
    assert headers["dlq.consumer"] == handler.name.encode()
    assert int(headers["dlq.original.offset"]) == letter.original_offset


def test_outbox_rows_are_marked_processed_and_backlog_and_lag_move(fleet):
    handler = private(PortfolioHandler, "outbox")
    health = KafkaHealth(settings.kafka_brokers)
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        add_miner(fleet)
        # One statement, one snapshot: the live workers may mark the row processed between two of them.
        cur.execute("SELECT processed, (SELECT backlog FROM hashinsight_outbox_stats()) FROM event_outbox "
                    "WHERE tenant_id = %s", (fleet.tenant_id,))
        (processed, backlog_before), = cur.fetchall()
        assert processed is False
        assert backlog_before >= 1
        deadline = time.monotonic() + 15
        while health.consumer_lag(handler.name, list(handler.topics)) < 1:  # captured, not yet consumed
            assert time.monotonic() < deadline, "the event never reached Kafka"
            time.sleep(0.1)
        loop = ConsumerLoop(handler)
        run_until(loop, lambda: loop.stats.applied >= 1)
        assert health.consumer_lag(handler.name, list(handler.topics)) == 0
        health.close()
        cur.execute("SELECT processed, processed_at IS NOT NULL FROM event_outbox WHERE tenant_id = %s",
                    (fleet.tenant_id,))
        assert cur.fetchall() == [(True, True)]
        cur.execute("SELECT backlog FROM hashinsight_outbox_stats()")
        assert cur.fetchone()[0] < backlog_before


def test_the_slot_advances_while_only_other_databases_write(pipeline):
    """WAL written elsewhere is released by the heartbeat, not held until the next outbox event."""
    with db.connect(db.admin_url().rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS hashinsight_wal_churn (g int, pad text)")
        cur.execute("INSERT INTO hashinsight_wal_churn SELECT g, repeat('x', 200) FROM generate_series(1, 100000) g")
        cur.execute("DROP TABLE hashinsight_wal_churn")  # ~30 MB of WAL, none of it in the captured database
        cur.execute("SELECT pg_current_wal_lsn()")
        (written_up_to,) = cur.fetchone()

        def confirmed_past_it() -> bool:
            cur.execute("SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots "
                        "WHERE slot_name = 'hashinsight_outbox'", (written_up_to,))
            return bool(cur.fetchone()[0])

        deadline = time.monotonic() + 30
        while not confirmed_past_it():
            assert time.monotonic() < deadline, "the slot did not confirm WAL written elsewhere within 30 s"
            time.sleep(0.5)
