"""What the consumer loop reports about itself: Prometheus metrics and one trace span per event.

The loop calls these at a few points (batch received, locks taken, committed, skipped, retried, dead-lettered);
everything else about observing it lives here, so the loop stays about consuming.

Spans. Every event read gets a CONSUMER span `<consumer> process <kind>` that continues the trace of the
request that wrote it: its parent is the `traceparent` Kafka record header, which the connector copies from
event_outbox.traceparent. The span runs from the batch's arrival to the database commit, with the outcome
(`hashinsight.outcome`: applied, duplicate, skipped, dead_lettered) and the record's topic, partition and
offset. Events of one user that the batch applied together (coalesced into one recalculation) link to each
other's traces. Replays and redrives read the same headers, so their spans join the original traces too
(`hashinsight.mode` = replay for tools/replay.py).

Pipeline lag. The page's worker (its handler says `reports_lag`) gives each committed batch's lag to a
LagPublisher (app/adapters/pipeline_lag.py), which the web's freshness guard reads.

Commit time. `committed_at()` is the unix time taken right after the batch's database commit; a handler's
after_commit publishes it with its page notification (docs/pipeline.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message
from opentelemetry.trace import SpanKind, Status, StatusCode

from app.adapters import metrics, tracing
from app.adapters.envelope_codec import Envelope
from app.adapters.pipeline_lag import LagPublisher
from app.domain.freshness import batch_lag_ms

_committed_at: ContextVar[float | None] = ContextVar("hashinsight_committed_at", default=None)


def committed_at() -> float:
    """Unix seconds of the commit whose after-commit step is running (now, outside the loop)."""
    value = _committed_at.get()
    return value if value is not None else time.time()


@dataclass(frozen=True)
class Applied:
    """One event of a committed batch: its record, its envelope, and whether the inbox took it as new."""

    msg: Message
    envelope: Envelope
    fresh: bool


class LoopTelemetry:
    def __init__(self, consumer: str, mode: str = "live") -> None:
        self.consumer = consumer
        self.mode = mode
        self._batch_started_ns = time.time_ns()
        self.lag: LagPublisher | None = None

    # -- the loop's call sites --------------------------------------------------------------------------------

    def batch_received(self, records: Sequence[Message]) -> None:
        self._batch_started_ns = time.time_ns()
        metrics.CONSUMER_BATCHES.labels(self.consumer).inc()

    def locks_taken(self, waited_s: float) -> None:
        metrics.LOCK_WAIT.labels(self.consumer).observe(waited_s)

    def retried(self, what: str, exc: BaseException) -> None:
        metrics.CONSUMER_RETRIES.labels(self.consumer, what, type(exc).__name__).inc()

    def committed(self, events: Iterable[Applied]) -> float:
        """After the database commit: latency, counters, spans; sets committed_at() for the after-commit step."""
        now = time.time()
        _committed_at.set(now)
        events = list(events)
        by_user: dict[str, list[Applied]] = {}
        stamps: list[tuple[float, float | None]] = []  # (committed, appended to Kafka) of each new event
        for e in events:
            if e.fresh:
                by_user.setdefault(e.envelope.user_id, []).append(e)
                committed = e.envelope.created_at.timestamp()
                metrics.COMMIT_TO_APPLIED.labels(self.consumer).observe(max(0.0, now - committed))
                if self.lag is not None:
                    stamps.append((committed, _appended_at(e.msg)))
        applied = sum(1 for e in events if e.fresh)
        if applied:
            metrics.CONSUMER_RECORDS.labels(self.consumer, "applied").inc(applied)
        if len(events) > applied:
            metrics.CONSUMER_RECORDS.labels(self.consumer, "duplicate").inc(len(events) - applied)
        if self.lag is not None:
            self.lag.observe(batch_lag_ms(stamps, now))
        end_ns = int(now * 1e9)
        for e in events:
            together = by_user.get(e.envelope.user_id, []) if e.fresh else []
            others = [tracing.header_value(o.msg.headers()) for o in together if o is not e]
            self._span(e.msg, e.envelope, "applied" if e.fresh else "duplicate", end_ns,
                       coalesced=len(together), links=others)
        return now

    def skipped(self, msg: Message, envelope: Envelope) -> None:
        metrics.CONSUMER_RECORDS.labels(self.consumer, "skipped").inc()
        self._span(msg, envelope, "skipped", time.time_ns())

    def dead_lettered(self, msg: Message, error_class: str, error: str, event_id: str | None) -> None:
        metrics.CONSUMER_RECORDS.labels(self.consumer, "dead_lettered").inc()
        metrics.DEAD_LETTERS.labels(self.consumer, error_class.rsplit(".", 1)[-1]).inc()
        self._span(msg, None, "dead_lettered", time.time_ns(), error=error, event_id=event_id)

    # -- spans ------------------------------------------------------------------------------------------------

    def _span(self, msg: Message, envelope: Envelope | None, outcome: str, end_ns: int, *, coalesced: int = 0,
              links: Sequence[str | None] = (), error: str | None = None, event_id: str | None = None) -> None:
        parent = tracing.context_of(tracing.header_value(msg.headers()))
        kind = envelope.kind if envelope is not None else "record"
        attributes: dict[str, str | int | bool] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": msg.topic() or "",
            "messaging.destination.partition.id": str(msg.partition()),
            "messaging.kafka.offset": msg.offset() or 0,
            "messaging.consumer.group.name": self.consumer,
            "hashinsight.consumer": self.consumer,
            "hashinsight.outcome": outcome,
            "hashinsight.mode": self.mode,
        }
        if envelope is not None:
            attributes.update({"hashinsight.event.id": envelope.id, "hashinsight.event.kind": envelope.kind,
                               "hashinsight.user_id": envelope.user_id})
        elif event_id:
            attributes["hashinsight.event.id"] = event_id
        if coalesced > 1:
            attributes["hashinsight.coalesced"] = coalesced
        span = tracing.tracer().start_span(
            f"{self.consumer} process {kind}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes,
            links=tracing.links_to(links), start_time=min(self._batch_started_ns, end_ns),
        )
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error[:500]))
        span.end(end_time=end_ns)


def _appended_at(msg: Message) -> float | None:
    """Unix seconds of the record's Kafka timestamp, None when it has none."""
    kind, ms = msg.timestamp()
    return ms / 1000 if kind != TIMESTAMP_NOT_AVAILABLE and ms > 0 else None
