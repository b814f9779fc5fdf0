"""The one envelope codec: Kafka record value bytes -> a validated Envelope.

Records are framed by the schema registry (magic byte 0, 4-byte schema id, Avro binary). The writer schema
comes from the registry; the reader schema is the contract's (contracts/avro/event_envelope.avsc), so Avro
schema resolution itself checks the envelope against the contract. The payload (JSON text) is then
validated against the generated model of its kind.

The Avro body is read with fastavro directly, against writer schemas parsed once per schema id: the
registry client's generic deserializer re-expands the reader schema and runs its rule machinery for every
record, which made decoding the largest cost of a replay.

Failures are split in two, because the consumer loop treats them differently:
- EnvelopeError: the record itself is bad (not Avro, unknown schema, contract mismatch, unknown kind, invalid
  payload). Retrying cannot help; it goes to the dead-letter topic.
- anything else (e.g. the registry is unreachable) is transient and is retried.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro import parse_schema, schemaless_reader
from fastavro.read import SchemaResolutionError
from pydantic import BaseModel, ValidationError

from generated.events import ENVELOPE_SCHEMA, EVENT_MODELS

ENVELOPE_READER_SCHEMA = ENVELOPE_SCHEMA.read_text()


class EnvelopeError(ValueError):
    """The record can never be processed as it is."""


@dataclass(frozen=True)
class Envelope:
    id: str
    kind: str
    user_id: str
    tenant_id: str
    entity_id: str | None
    payload: BaseModel
    idempotency_key: str | None
    created_at: datetime
    trace_id: str | None


def topic_of(kind: str) -> str:
    """The topic an event kind travels on: miner.added -> events.miner (the connector's routing rule)."""
    return "events." + kind.split(".", 1)[0]


def envelope_from_record(record: dict[str, Any], topic: str | None = None) -> Envelope:
    """Validate a decoded envelope record (pure: no I/O)."""
    kind = record.get("kind")
    model = EVENT_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise EnvelopeError(f"unknown event kind {kind!r}; known: {', '.join(sorted(EVENT_MODELS))}")
    if topic is not None and topic != topic_of(kind):
        raise EnvelopeError(f"event kind {kind} does not belong on {topic} (expected {topic_of(kind)})")
    for name in ("id", "user_id", "tenant_id"):
        if not record.get(name):
            raise EnvelopeError(f"envelope field {name} is empty")
    try:
        payload = model.model_validate(json.loads(record["payload"]))
    except (TypeError, json.JSONDecodeError) as exc:
        raise EnvelopeError(f"{kind} payload is not JSON text: {exc}") from exc
    except ValidationError as exc:
        raise EnvelopeError(f"{kind} payload breaks its contract: {exc}") from exc
    try:
        created_at = datetime.fromisoformat(record["created_at"].replace("Z", "+00:00"))
    except (AttributeError, ValueError) as exc:
        raise EnvelopeError(f"created_at {record.get('created_at')!r} is not ISO-8601") from exc
    return Envelope(
        id=str(record["id"]),
        kind=kind,
        user_id=record["user_id"],
        tenant_id=record["tenant_id"],
        entity_id=record.get("entity_id"),
        payload=payload,
        idempotency_key=record.get("idempotency_key"),
        created_at=created_at,
        trace_id=record.get("trace_id"),
    )


class EnvelopeCodec:
    def __init__(self, registry_url: str, client: SchemaRegistryClient | None = None) -> None:
        # A caller that already has a registry client passes it, so the process keeps one schema cache.
        self._registry = client or SchemaRegistryClient({"url": registry_url})
        self._reader = parse_schema(json.loads(ENVELOPE_READER_SCHEMA))
        self._writers: dict[int, Any] = {}

    def _writer_schema(self, schema_id: int) -> Any:
        parsed = self._writers.get(schema_id)
        if parsed is None:
            try:
                schema = self._registry.get_schema(schema_id)
            except SchemaRegistryError as exc:
                if exc.http_status_code is not None and 400 <= exc.http_status_code < 500:
                    raise EnvelopeError(f"schema {schema_id} of the record is unknown to the registry: {exc}") \
                        from exc
                raise  # the registry is failing: transient
            try:
                parsed = parse_schema(json.loads(schema.schema_str or ""))
            except Exception as exc:  # noqa: BLE001 - any parse failure means this record cannot be read
                raise EnvelopeError(f"schema {schema_id} of the record is not usable Avro: {exc!r}") from exc
            self._writers[schema_id] = parsed
        return parsed

    def decode(self, topic: str, value: bytes | None) -> Envelope:
        if not value:
            raise EnvelopeError("empty record value")
        if value[0] != 0 or len(value) <= 5:
            raise EnvelopeError("value is not schema-registry framed Avro (no magic byte 0)")
        writer = self._writer_schema(int.from_bytes(value[1:5], "big"))
        try:
            record = schemaless_reader(io.BytesIO(value[5:]), writer, self._reader)
        except (SchemaResolutionError, ValueError, TypeError, KeyError, EOFError, IndexError) as exc:
            # fastavro's schema resolution and truncated data surface as these.
            raise EnvelopeError(f"value does not decode as the contract's envelope: {exc!r}") from exc
        if not isinstance(record, dict):
            raise EnvelopeError("decoded value is not a record")
        return envelope_from_record(record, topic)
