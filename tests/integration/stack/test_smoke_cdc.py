"""The real chain, end to end, before anything is built on it.

PostgreSQL row -> Debezium Postgres source in Kafka Connect -> Apicurio Avro converter -> Kafka
-> confluent-kafka AvroDeserializer reading the schema from Apicurio's Confluent-compatible API.
"""

from __future__ import annotations

import json
import struct
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg2
import pytest
import requests
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from app.adapters.kafka_connect import ConnectClient
from app.config import get_settings

SMOKE_DB = "hashinsight_smoke"
CONNECTOR = "hashinsight-smoke"
SLOT = "hashinsight_smoke"
TOPIC = "smoke.public.smoke_events"

settings = get_settings()


@contextmanager
def _admin_cursor(dbname: str) -> Iterator[Any]:
    conn = psycopg2.connect(
        host="127.0.0.1", port=settings.pg_port, user="postgres", password="postgres", dbname=dbname
    )
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def _connector_config() -> dict[str, str]:
    return {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "127.0.0.1",
        "database.port": str(settings.pg_port),
        "database.user": "postgres",
        "database.password": "postgres",
        "database.dbname": SMOKE_DB,
        "topic.prefix": "smoke",
        "plugin.name": "pgoutput",
        "slot.name": SLOT,
        "publication.name": "hashinsight_smoke",
        "publication.autocreate.mode": "filtered",
        "table.include.list": "public.smoke_events",
        "snapshot.mode": "no_data",
        "schema.name.adjustment.mode": "avro",
        "transforms": "unwrap,key",
        "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
        "transforms.key.type": "org.apache.kafka.connect.transforms.ExtractField$Key",
        "transforms.key.field": "user_id",
        "message.key.columns": "public.smoke_events:user_id",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        # Apicurio 3.x converter defaults write what confluent-kafka reads: magic 0 + 4-byte contentId.
        "value.converter": "io.apicurio.registry.utils.converter.AvroConverter",
        "value.converter.apicurio.registry.url": settings.registry_native_url,
        "value.converter.apicurio.registry.auto-register": "true",
        "value.converter.apicurio.registry.find-latest": "true",
        "value.converter.apicurio.registry.headers.enabled": "false",
        "value.converter.apicurio.registry.use-id": "contentId",
        "topic.creation.default.replication.factor": "1",
        "topic.creation.default.partitions": "1",
        "poll.interval.ms": "50",
    }


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def _drop_slot_when_inactive() -> None:
    with _admin_cursor("postgres") as cur:

        def inactive() -> bool:
            cur.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (SLOT,))
            row = cur.fetchone()
            return row is None or not row[0]

        _wait(inactive, 30, f"replication slot {SLOT} to be released")
        cur.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
            (SLOT,),
        )


def _slot_active() -> bool:
    with _admin_cursor("postgres") as cur:
        cur.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (SLOT,))
        row = cur.fetchone()
        return bool(row and row[0])


def _delete_connector() -> None:
    """Stop, forget the stored source offsets, delete, drop the slot: the next run starts afresh."""
    ConnectClient(settings.connect_url).remove(CONNECTOR)
    _drop_slot_when_inactive()


@pytest.fixture
def smoke_table():
    with _admin_cursor("postgres") as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (SMOKE_DB,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE DATABASE {SMOKE_DB}")
    with _admin_cursor(SMOKE_DB) as cur:
        cur.execute(
            """CREATE TABLE IF NOT EXISTS smoke_events(
                 id text PRIMARY KEY, user_id text NOT NULL, payload jsonb NOT NULL,
                 amount numeric(12,4), created_at timestamptz NOT NULL DEFAULT now())"""
        )
    _delete_connector()
    yield
    _delete_connector()


def test_row_travels_from_postgres_to_python_as_avro(smoke_table):
    # Created stopped and with its offsets cleared, so no run ever resumes from a slot that is gone.
    body = {"name": CONNECTOR, "config": _connector_config(), "initial_state": "STOPPED"}
    url = f"{settings.connect_url}/connectors/{CONNECTOR}"
    resp = requests.post(f"{settings.connect_url}/connectors", json=body, timeout=30)
    assert resp.status_code == 201, resp.text
    assert requests.delete(f"{url}/offsets", timeout=30).status_code == 200
    assert requests.put(f"{url}/resume", timeout=30).status_code == 202

    def running():
        resp = requests.get(f"{settings.connect_url}/connectors/{CONNECTOR}/status", timeout=10)
        if resp.status_code != 200:
            return False
        status = resp.json()
        tasks = status.get("tasks", [])
        if any(t["state"] == "FAILED" for t in tasks):
            pytest.fail(f"connector task failed: {tasks[0].get('trace', '')[:2000]}")
        return status["connector"]["state"] == "RUNNING" and tasks and tasks[0]["state"] == "RUNNING"

    _wait(running, 60, "the connector to run")
    _wait(_slot_active, 60, "the connector's replication slot to be active")

    row_id = str(uuid.uuid4())
    payload = {"miner": "antminer-s21", "hashrate_ths": 200, "tags": ["a", "b"]}
    with _admin_cursor(SMOKE_DB) as cur:
        cur.execute(
            "INSERT INTO smoke_events(id, user_id, payload, amount) VALUES (%s, %s, %s, %s)"
            " RETURNING created_at",
            (row_id, "smoke-user", json.dumps(payload), "12.5000"),
        )
        created_at = cur.fetchone()[0]

    registry = SchemaRegistryClient({"url": settings.schema_registry_url})
    deserialize = AvroDeserializer(registry)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_brokers,
            "group.id": f"smoke-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    try:
        _wait(lambda: TOPIC in consumer.list_topics(timeout=5).topics, 60, f"topic {TOPIC}")
        consumer.assign([TopicPartition(TOPIC, 0, 0)])
        deadline = time.monotonic() + 60
        found = None
        while found is None and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            value = deserialize(msg.value(), SerializationContext(TOPIC, MessageField.VALUE))
            if value["id"] == row_id:
                found = (msg, value)
        assert found is not None, f"row {row_id} never reached {TOPIC}"
    finally:
        consumer.close()

    msg, value = found
    assert msg.key() == b"smoke-user"
    assert value["user_id"] == "smoke-user"
    # jsonb arrives as PostgreSQL's own JSON text: compare parsed, never bytes.
    assert json.loads(value["payload"]) == payload
    # timestamptz arrives as ISO-8601 UTC text with microseconds.
    assert value["created_at"].endswith("Z")
    assert datetime.fromisoformat(value["created_at"]) == created_at
    assert value["amount"] == Decimal("12.5000")

    # Wire format: magic byte 0, 4-byte big-endian id that the Confluent-compatible API resolves.
    raw = msg.value()
    assert raw[0] == 0
    (schema_id,) = struct.unpack(">I", raw[1:5])
    schema = requests.get(f"{settings.schema_registry_url}/schemas/ids/{schema_id}", timeout=10).json()
    fields = {f["name"] for f in json.loads(schema["schema"])["fields"]}
    assert {"id", "user_id", "payload", "amount", "created_at"} <= fields
    assert f"{TOPIC}-value" in registry.get_subjects()
