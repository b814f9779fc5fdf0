"""Re-publish dead letters to their original topics after a fix (`python -m tools.redrive`).

Each dead letter on events.dlq carries the original record's key and value bytes untouched; redrive produces
them again to the original topic, with a `dlq.redriven-from` header naming the dead letter and a `traceparent`
header continuing the trace of the request that wrote the event (a `redrive` span in that trace). Every consumer
of that topic sees the record again; those that had applied it skip it through their inbox.

Progress is kept as the offsets of the consumer group `hashinsight.redrive` (`hashinsight.redrive.<consumer>`
with --consumer), so a dead letter is redriven once: a second run finds nothing new. --consumer limits the
redrive to letters one consumer gave up on;
--dry-run lists what would be redriven and moves nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from opentelemetry.trace import SpanKind

from app.adapters import tracing
from app.adapters.dead_letters import DLQ_TOPIC, DeadLetter, DeadLetterQueue
from app.config import get_settings

GROUP = "hashinsight.redrive"


def redrive(consumer_name: str | None, dry_run: bool, group: str | None = None, idle_timeout: float = 3.0
            ) -> Counter[str]:
    # A redrive limited to one consumer keeps its own position, so it never moves past other consumers'
    # letters; a full redrive that follows may re-publish that consumer's letters again, which its inbox skips.
    group = group or (f"{GROUP}.{consumer_name}" if consumer_name else GROUP)
    settings = get_settings()
    producer = Producer({"bootstrap.servers": settings.kafka_brokers, "enable.idempotence": True})
    dlq = DeadLetterQueue(producer, SchemaRegistryClient({"url": settings.schema_registry_url}))
    reader = Consumer({
        "bootstrap.servers": settings.kafka_brokers,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    summary: Counter[str] = Counter()
    failures: list[KafkaError] = []
    try:
        meta = reader.list_topics(DLQ_TOPIC, timeout=10).topics[DLQ_TOPIC]
        partitions = [TopicPartition(DLQ_TOPIC, p) for p in sorted(meta.partitions)]
        committed = {tp.partition: tp.offset for tp in reader.committed(partitions, timeout=10)}
        ends = {}
        for tp in partitions:
            low, high = reader.get_watermark_offsets(tp, timeout=10)
            start = committed[tp.partition] if committed[tp.partition] >= 0 else low
            if start < high:
                ends[tp.partition] = high
        if not ends:
            print("no dead letters to redrive")
            return summary
        reader.assign([TopicPartition(DLQ_TOPIC, p, committed[p] if committed[p] >= 0 else -2) for p in ends])
        while ends:
            msgs = reader.consume(num_messages=500, timeout=idle_timeout)
            if not msgs:
                break
            for msg in msgs:
                if msg.error():
                    continue
                letter = dlq.decode(msg.value(), msg.headers())
                where = f"{letter.original_topic}[{letter.original_partition}]@{letter.original_offset}"
                if consumer_name and letter.consumer != consumer_name:
                    summary["skipped (other consumer)"] += 1
                elif dry_run:
                    print(f"  would redrive {where} (event {letter.event_id}): {letter.error[:120]}")
                    summary["would redrive"] += 1
                else:
                    _republish(producer, letter, f"{DLQ_TOPIC}/{msg.partition()}@{msg.offset()}", failures)
                    summary[f"redriven to {letter.original_topic}"] += 1
                if msg.offset() >= ends.get(msg.partition(), 0) - 1:
                    ends.pop(msg.partition(), None)
            if not dry_run:
                # The position moves only past letters whose records the broker has confirmed.
                if producer.flush(30) > 0:
                    raise SystemExit("redrive: records not delivered in 30 s; offsets not committed, run again")
                if failures:
                    raise SystemExit(f"redrive: {len(failures)} record(s) refused by Kafka ({failures[0]}); "
                                     "offsets not committed, run again")
                reader.commit(asynchronous=False)
    finally:
        reader.close()
    return summary


def _republish(producer: Producer, letter: DeadLetter, source: str, failures: list[KafkaError]) -> None:
    """Produce the original record again, inside a PRODUCER span continuing the trace of the request that wrote
    it (the dead letter's traceparent header), whose traceparent the new record carries."""
    with tracing.tracer().start_as_current_span(
        f"redrive {letter.original_topic}", context=tracing.context_of(letter.traceparent), kind=SpanKind.PRODUCER,
        attributes={"messaging.system": "kafka", "messaging.destination.name": letter.original_topic,
                    "hashinsight.event.id": letter.event_id or "", "hashinsight.redriven_from": source},
    ):
        headers = [("dlq.redriven-from", source.encode())]
        traceparent = tracing.current_traceparent() or letter.traceparent
        if traceparent:
            headers.append((tracing.TRACEPARENT, traceparent.encode()))
        producer.produce(letter.original_topic, key=letter.original_key, value=letter.original_value,
                         headers=headers, on_delivery=lambda err, _m: failures.append(err) if err else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Re-publish dead letters to their original topics.")
    parser.add_argument("--consumer", help="only letters this consumer gave up on (e.g. hashinsight.portfolio)")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    tracing.configure("redrive")
    for key, count in sorted(redrive(args.consumer, args.dry_run).items()):
        print(f"  {key}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
