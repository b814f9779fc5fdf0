"""Kafka figures for /api/health: consumer lag per group and the number of dead letters."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from app.adapters.dead_letters import DLQ_TOPIC


class KafkaHealth:
    def __init__(self, brokers: str, timeout: float = 3.0) -> None:
        self._timeout = timeout
        self._admin = AdminClient({"bootstrap.servers": brokers, "socket.timeout.ms": int(timeout * 1000),
                                   "reconnect.backoff.max.ms": 1000})
        # Only for watermark queries; it never subscribes or commits.
        self._probe = Consumer({"bootstrap.servers": brokers, "group.id": "hashinsight.health-probe",
                                "enable.auto.commit": False, "reconnect.backoff.max.ms": 1000})

    def _partitions(self, topic: str) -> list[TopicPartition]:
        meta = self._probe.list_topics(topic, timeout=self._timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            return []
        return [TopicPartition(topic, p) for p in sorted(meta.partitions)]

    def consumer_lag(self, group: str, topics: list[str]) -> int:
        """Records on `topics` the group has not committed yet (a group that never committed lags by all)."""
        partitions = [tp for t in topics for tp in self._partitions(t)]
        if not partitions:
            return 0
        request = [ConsumerGroupTopicPartitions(group, partitions)]
        result = self._admin.list_consumer_group_offsets(request, request_timeout=self._timeout)
        committed = {(tp.topic, tp.partition): tp.offset for tp in result[group].result().topic_partitions}
        lag = 0
        for tp in partitions:
            low, high = self._probe.get_watermark_offsets(tp, timeout=self._timeout, cached=False)
            done = committed.get((tp.topic, tp.partition), -1)
            lag += high - (done if done >= 0 else low)
        return lag

    def dlq_count(self) -> int:
        """Dead letters currently retained on events.dlq."""
        total = 0
        for tp in self._partitions(DLQ_TOPIC):
            low, high = self._probe.get_watermark_offsets(tp, timeout=self._timeout, cached=False)
            total += high - low
        return total

    def dlq_recent(self, window_s: float) -> int:
        """Dead letters written in the last `window_s` seconds: something is failing now."""
        since_ms = int((time.time() - window_s) * 1000)
        partitions = self._partitions(DLQ_TOPIC)
        if not partitions:
            return 0
        firsts = self._probe.offsets_for_times(
            [TopicPartition(DLQ_TOPIC, tp.partition, since_ms) for tp in partitions], timeout=self._timeout
        )
        total = 0
        for first in firsts:
            if first.offset < 0:  # nothing written since then
                continue
            _low, high = self._probe.get_watermark_offsets(first, timeout=self._timeout, cached=False)
            total += high - first.offset
        return total

    def close(self) -> None:
        self._probe.close()
