"""Dead letters: records a consumer gives up on, kept on events.dlq with the original bytes and the reason."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from app.adapters.tracing import TRACEPARENT, header_value
from generated.events import DEAD_LETTER_SCHEMA

DLQ_TOPIC = "events.dlq"
# What a truncated dead letter keeps (events.dlq takes records of up to ~1 MB).
TRUNCATED_VALUE_BYTES = 256 * 1024
TRUNCATED_ERROR_CHARS = 4000
SCHEMA = DEAD_LETTER_SCHEMA.read_text()


@dataclass(frozen=True)
class DeadLetter:
    original_topic: str
    original_partition: int
    original_offset: int
    original_key: bytes | None
    original_value: bytes
    error: str
    error_class: str
    attempts: int
    consumer: str
    failed_at: str
    event_id: str | None = None
    # The original record's W3C traceparent header, carried as a header of the dead letter (not in its Avro
    # value), so a redrive continues the trace of the request that wrote the event.
    traceparent: str | None = None

    def headers(self) -> list[tuple[str, bytes]]:
        trace = [(TRACEPARENT, self.traceparent.encode())] if self.traceparent else []
        return trace + [
            ("dlq.original.topic", self.original_topic.encode()),
            ("dlq.original.partition", str(self.original_partition).encode()),
            ("dlq.original.offset", str(self.original_offset).encode()),
            ("dlq.error", self.error[:1000].encode()),
            ("dlq.error.class", self.error_class.encode()),
            ("dlq.attempts", str(self.attempts).encode()),
            ("dlq.consumer", self.consumer.encode()),
        ]


def dead_letter_for(msg: Message, exc: BaseException, attempts: int, consumer: str,
                    event_id: str | None = None) -> DeadLetter:
    cls = type(exc)
    return DeadLetter(
        original_topic=msg.topic(),
        original_partition=msg.partition(),
        original_offset=msg.offset(),
        original_key=msg.key(),
        original_value=msg.value() or b"",
        error=str(exc) or cls.__name__,
        error_class=f"{cls.__module__}.{cls.__qualname__}",
        attempts=attempts,
        consumer=consumer,
        failed_at=datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        event_id=event_id,
        traceparent=header_value(msg.headers()),
    )


class DeadLetterQueue:
    def __init__(self, producer: Producer, registry: SchemaRegistryClient) -> None:
        self._producer = producer
        self._serialize = AvroSerializer(registry, SCHEMA, conf={"auto.register.schemas": True})
        self._deserialize = AvroDeserializer(registry, schema_str=SCHEMA)

    def publish(self, letter: DeadLetter, timeout: float = 30.0) -> None:
        """Synchronous: the caller commits the original offset only once the dead letter is stored."""
        record = {k: v for k, v in letter.__dict__.items() if k != "traceparent"}
        value = self._serialize(record, SerializationContext(DLQ_TOPIC, MessageField.VALUE))
        errors: list[KafkaError] = []
        self._producer.produce(
            DLQ_TOPIC,
            key=letter.original_key,
            value=value,
            headers=letter.headers(),
            on_delivery=lambda err, _msg: errors.append(err) if err else None,
        )
        if self._producer.flush(timeout) > 0:
            where = f"{letter.original_topic}/{letter.original_partition}@{letter.original_offset}"
            raise TimeoutError(f"dead letter for {where} not delivered in {timeout:.0f}s")
        if errors:
            # The broker's own error (e.g. MSG_SIZE_TOO_LARGE, or a retriable one), for the caller to classify.
            raise KafkaException(errors[0])

    def decode(self, value: bytes, headers: list[tuple[str, bytes]] | None = None) -> DeadLetter:
        record = self._deserialize(value, SerializationContext(DLQ_TOPIC, MessageField.VALUE))
        return DeadLetter(**record, traceparent=header_value(headers))


def truncated(letter: DeadLetter, refused: BaseException) -> DeadLetter:
    """The letter cut to a size Kafka takes, saying so: the reason survives, the original bytes only in part."""
    value = letter.original_value
    note = (f" [dead letter truncated after the broker refused it ({type(refused).__name__}: {str(refused)[:200]});"
            f" original value {len(value)} bytes, {min(len(value), TRUNCATED_VALUE_BYTES)} kept]")
    return replace(
        letter,
        original_value=value[:TRUNCATED_VALUE_BYTES],
        original_key=(letter.original_key or b"")[:1024] or None,
        error=letter.error[: TRUNCATED_ERROR_CHARS - len(note)] + note,
    )
