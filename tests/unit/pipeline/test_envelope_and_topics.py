"""Pure pieces of the pipeline: envelope validation and topic specs from the AsyncAPI bindings."""

from __future__ import annotations

import json

import pytest

from app.adapters.envelope_codec import EnvelopeError, envelope_from_record, topic_of
from tools.topics import load_specs, topic_specs

MINER_ADDED = {
    "miner_id": "7d1c1f8e-2f5b-4b8e-9a53-0c6f4b8a1d01", "model_id": "antminer-s21", "status": "active",
    "label": "rack 1", "serial_number": None, "hashrate_ths": 200.0, "power_w": 3500,
}


def _record(**overrides):
    record = {
        "id": "e1", "kind": "miner.added", "user_id": "u1", "tenant_id": "t1", "entity_id": None,
        "payload": json.dumps(MINER_ADDED), "idempotency_key": None,
        "created_at": "2026-11-24T10:00:00.123456Z", "processed": False, "trace_id": None,
    }
    record.update(overrides)
    return record


def test_a_valid_record_becomes_an_envelope_with_a_typed_payload():
    env = envelope_from_record(_record(), "events.miner")
    assert env.kind == "miner.added" and env.user_id == "u1" and env.tenant_id == "t1"
    assert env.payload.hashrate_ths == 200.0
    assert env.created_at.tzinfo is not None and env.created_at.microsecond == 123456


@pytest.mark.parametrize(
    ("overrides", "topic", "reason"),
    [
        ({"kind": "miner.exploded"}, "events.miner", "unknown event kind"),
        ({}, "events.treasury", "does not belong on events.treasury"),
        ({"payload": "{not json"}, "events.miner", "not JSON"),
        ({"payload": json.dumps({**MINER_ADDED, "status": "melting"})}, "events.miner", "breaks its contract"),
        ({"payload": json.dumps({k: v for k, v in MINER_ADDED.items() if k != "model_id"})}, "events.miner",
         "breaks its contract"),
        ({"tenant_id": ""}, "events.miner", "tenant_id is empty"),
        ({"created_at": "yesterday"}, "events.miner", "not ISO-8601"),
    ],
)
def test_bad_records_are_refused_with_the_reason(overrides, topic, reason):
    with pytest.raises(EnvelopeError, match=reason):
        envelope_from_record(_record(**overrides), topic)


def test_kinds_route_to_their_domain_topic():
    assert topic_of("miner.status_changed") == "events.miner"
    assert topic_of("treasury.trade_executed") == "events.treasury"


def test_topic_specs_come_from_the_contract_bindings():
    specs = {s.name: s for s in load_specs()}
    assert set(specs) == {"events.miner", "events.treasury", "events.ops", "events.crm", "events.market", "events.dlq"}
    assert specs["events.miner"].partitions == 6
    assert int(specs["events.dlq"].config["retention.ms"]) > int(specs["events.miner"].config["retention.ms"])
    assert specs["events.miner"].config["cleanup.policy"] == "delete"


def test_a_channel_binding_without_a_topic_name_is_refused():
    with pytest.raises(ValueError, match="names no topic"):
        topic_specs({"channels": {"x": {"bindings": {"kafka": {"partitions": 1}}}}})
    with pytest.raises(ValueError, match="no channel"):
        topic_specs({"channels": {}})
