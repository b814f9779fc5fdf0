"""The one consumer loop every worker runs; a worker only supplies its Handler.

Per batch:
1. poll up to `batch_size` records;
2. decode each through the envelope codec; a record that can never decode goes to the dead-letter topic;
3. group the events by user (records of one user share a partition, so the group keeps their order);
4. per user, under the Redis lock the handler names: one database transaction that claims every event in
   consumer_inbox (a duplicate key means "already applied") and applies the handler's effect once for all
   the new ones (several events of one user coalesce into one recalculation), then commits;
5. after the commit, the handler's after-commit step (cache invalidation);
6. commit the Kafka offsets of the whole batch: the database first, then Kafka, so a crash in between
   re-delivers events the inbox already holds, and they are skipped.

Transient failures (database, Redis, registry unreachable; lock busy) are retried with capped exponential
backoff for as long as it takes. Other failures are retried `max_attempts` times, then the user's events are
tried one by one so a single poison event cannot hold the others back, and what still fails goes to
events.dlq with the reason. SIGTERM/SIGINT finish the batch in hand, commit, and exit cleanly.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import redis
import requests
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from app.adapters import inbox
from app.adapters.db import worker_engine
from app.adapters.dead_letters import DeadLetterQueue, dead_letter_for
from app.adapters.envelope_codec import Envelope, EnvelopeCodec, EnvelopeError
from app.adapters.redis_client import get_redis
from app.adapters.redis_lock import LockNotAcquired, RedisLock
from app.config import Settings, get_settings
from app.service_layer.unit_of_work import UnitOfWork

log = logging.getLogger("hashinsight.consumer")
T = TypeVar("T")


class Handler(Protocol):
    """What a worker supplies. `apply` runs inside the transaction; `after_commit` after it."""

    name: str
    topics: Sequence[str]
    # The one handler that marks the outbox rows of every event it reads as processed (see 0007).
    marks_outbox: bool

    def accepts(self, kind: str) -> bool: ...

    def lock_key(self, user_id: str) -> str | None: ...

    def apply(self, uow: UnitOfWork, user_id: str, events: list[Envelope]) -> None: ...

    def after_commit(self, tenant_id: str, user_id: str, events: list[Envelope]) -> None: ...


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | LockNotAcquired | redis.ConnectionError | redis.TimeoutError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, requests.ConnectionError | requests.Timeout | ConnectionError | TimeoutError):
        return True
    return isinstance(exc, SchemaRegistryError) and (exc.http_status_code or 500) >= 500


@dataclass
class LoopStats:
    batches: int = 0
    records: int = 0
    applied: int = 0
    duplicates: int = 0
    skipped: int = 0
    recalculations: int = 0
    dead_lettered: int = 0
    retries: int = 0
    dead_letter_reasons: list[str] = field(default_factory=list)


@dataclass
class _Item:
    msg: Message
    envelope: Envelope


class _Stopping(Exception):
    """Raised inside a retry wait when a stop was requested: leave the batch uncommitted."""


class ConsumerLoop:
    def __init__(
        self,
        handler: Handler,
        *,
        settings: Settings | None = None,
        engine: Engine | None = None,
        redis_client: redis.Redis | None = None,
        group_id: str | None = None,
        batch_size: int = 500,
        poll_timeout: float = 0.5,
        max_attempts: int = 3,
        backoff_base: float = 0.1,
        backoff_max: float = 5.0,
        extra_consumer_config: dict[str, object] | None = None,
        bypass_inbox: bool = False,
    ) -> None:
        self.handler = handler
        self.settings = settings or get_settings()
        self.engine = engine or worker_engine()
        self.redis = redis_client or get_redis(self.settings.redis_url)
        self.lock = RedisLock(self.redis)
        registry = SchemaRegistryClient({"url": self.settings.schema_registry_url})
        self.codec = EnvelopeCodec(self.settings.schema_registry_url, client=registry)
        self.dlq = DeadLetterQueue(
            Producer({"bootstrap.servers": self.settings.kafka_brokers, "enable.idempotence": True}), registry
        )
        self.group_id = group_id or handler.name
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.bypass_inbox = bypass_inbox
        self.purge_interval_s = 60.0
        self._last_purge = time.monotonic()
        self.stats = LoopStats()
        self._stop = False
        # A named fault to inject in tests of crash recovery; unset in normal runs.
        self._failpoint = os.environ.get("HASHINSIGHT_FAILPOINT", "")
        config: dict[str, object] = {
            "bootstrap.servers": self.settings.kafka_brokers,
            "group.id": self.group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            "max.poll.interval.ms": 300_000,
            # A crashed worker's partitions move to its restart (or a peer) after 10 s, not the default 45 s.
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 2_000,
            "fetch.wait.max.ms": 50,
        }
        config.update(extra_consumer_config or {})
        self.consumer = Consumer(config)

    # -------------------------------------------------------------------------------------------- running

    def request_stop(self, *_: object) -> None:
        self._stop = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def run(self, until: Callable[[], bool] | None = None) -> LoopStats:
        """Consume until a stop is requested (or `until()` is true); returns the counters."""
        self.consumer.subscribe(list(self.handler.topics))
        log.info("%s consuming %s as group %s", self.handler.name, ", ".join(self.handler.topics), self.group_id)
        try:
            while not self._stop and not (until and until()):
                # Wait for the first record only; then take what has already arrived, without waiting for a
                # full batch (consume() with a timeout would hold every event until the batch fills or times out).
                first = self.consumer.poll(self.poll_timeout)
                if first is None:
                    continue
                msgs = [first, *self.consumer.consume(num_messages=self.batch_size - 1, timeout=0)]
                records = [m for m in msgs if self._usable(m)]
                if not records:
                    continue
                try:
                    self.process_batch(records)
                except _Stopping:
                    log.info("stop requested during retries; batch left for redelivery")
                    break
                self._commit_offsets(records)
        finally:
            self.consumer.close()
            log.info("%s stopped: %s", self.handler.name, self.stats)
        return self.stats

    def _usable(self, msg: Message) -> bool:
        err = msg.error()
        if err is None:
            return True
        if err.code() == KafkaError._PARTITION_EOF:
            return False
        if err.fatal():
            raise RuntimeError(f"fatal Kafka error: {err}")
        log.warning("kafka: %s", err)
        return False

    def _commit_offsets(self, records: list[Message]) -> None:
        if self._failpoint == "crash_after_db_commit":
            log.error("failpoint crash_after_db_commit: exiting before the offset commit")
            os._exit(17)
        last: dict[tuple[str, int], int] = {}
        for m in records:
            key = (m.topic(), m.partition())
            last[key] = max(last.get(key, -1), m.offset())
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
        self._retry_transient(lambda: self.consumer.commit(offsets=offsets, asynchronous=False), "offset commit")

    # -------------------------------------------------------------------------------------------- a batch

    def process_batch(self, records: list[Message]) -> None:
        self.stats.batches += 1
        self.stats.records += len(records)
        groups: OrderedDict[tuple[str, str], list[_Item]] = OrderedDict()
        seen: list[str] = []
        for msg in records:
            envelope = self._decode(msg)
            if envelope is None:
                continue
            seen.append(envelope.id)
            if not self.handler.accepts(envelope.kind):
                self.stats.skipped += 1
                continue
            groups.setdefault((envelope.tenant_id, envelope.user_id), []).append(_Item(msg, envelope))
        for (tenant_id, user_id), items in groups.items():
            self._process_user(tenant_id, user_id, items)
        if self.handler.marks_outbox and seen:
            self._retry_transient(lambda: self._mark_outbox(seen), "outbox marking")

    # -------------------------------------------------------------------------------------------- the outbox

    def _mark_outbox(self, event_ids: list[str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("SELECT hashinsight_mark_outbox_processed(:ids)"), {"ids": event_ids})
        now = time.monotonic()
        if now - self._last_purge >= self.purge_interval_s:
            self._last_purge = now
            self._purge_expired()

    def _purge_expired(self) -> None:
        """Bounded tables: processed outbox rows and answered Idempotency-Keys past their retention."""
        retention = {
            "hashinsight_purge_outbox": self.settings.outbox_retention_hours,
            "hashinsight_purge_idempotency_keys": self.settings.idempotency_retention_hours,
        }
        for function, hours in retention.items():
            with self.engine.begin() as conn:
                purged = conn.execute(
                    text(f"SELECT {function}(make_interval(hours => :h), 10000)"), {"h": hours}
                ).scalar_one()
            if purged:
                log.info("%s: %d rows older than %d h", function, purged, hours)

    def _decode(self, msg: Message) -> Envelope | None:
        try:
            return self._retry_transient(lambda: self.codec.decode(msg.topic(), msg.value()), "decode")
        except EnvelopeError as exc:
            self._dead_letter(msg, exc, attempts=1, event_id=None)
            return None

    def _process_user(self, tenant_id: str, user_id: str, items: list[_Item]) -> None:
        try:
            self._with_attempts(lambda: self._apply(tenant_id, user_id, items))
            return
        except _Stopping:
            raise
        except Exception as exc:  # noqa: BLE001 - any non-transient failure; decided below
            if len(items) == 1:
                self._dead_letter(items[0].msg, exc, attempts=self.max_attempts, event_id=items[0].envelope.id)
                return
            log.warning("%s: %d events of user %s failed together (%s); trying one by one",
                        self.handler.name, len(items), user_id, exc)
        for item in items:
            try:
                self._with_attempts(lambda item=item: self._apply(tenant_id, user_id, [item]))
            except _Stopping:
                raise
            except Exception as exc:  # noqa: BLE001
                self._dead_letter(item.msg, exc, attempts=self.max_attempts, event_id=item.envelope.id)

    def _apply(self, tenant_id: str, user_id: str, items: list[_Item]) -> None:
        key = self.handler.lock_key(user_id)
        if key is None:
            self._apply_in_transaction(tenant_id, user_id, items)
        else:
            with self.lock.hold(key):
                self._apply_in_transaction(tenant_id, user_id, items)

    def _apply_in_transaction(self, tenant_id: str, user_id: str, items: list[_Item]) -> None:
        with UnitOfWork(self.engine, tenant_id) as uow:
            fresh = [
                i.envelope
                for i in items
                if inbox.claim(
                    uow.conn, self.handler.name, i.envelope.id, tenant_id, i.envelope.kind, user_id,
                    force=self.bypass_inbox,
                )
            ]
            if fresh:
                self.handler.apply(uow, user_id, fresh)
            uow.commit()
        self.stats.duplicates += len(items) - len(fresh)
        if not fresh:
            return
        self.stats.applied += len(fresh)
        self.stats.recalculations += 1
        try:
            self.handler.after_commit(tenant_id, user_id, fresh)
        except Exception:  # noqa: BLE001 - the effect is committed; a stale cache expires by its TTL
            log.exception("%s: after-commit step failed for user %s", self.handler.name, user_id)

    # -------------------------------------------------------------------------------------------- failures

    def _dead_letter(self, msg: Message, exc: BaseException, attempts: int, event_id: str | None) -> None:
        letter = dead_letter_for(msg, exc, attempts, self.handler.name, event_id)
        self._retry_transient(lambda: self.dlq.publish(letter), "dead-letter publish")
        self.stats.dead_lettered += 1
        self.stats.dead_letter_reasons.append(letter.error[:200])
        log.warning("%s: %s/%d@%d -> %s: %s", self.handler.name, msg.topic(), msg.partition(), msg.offset(),
                    "events.dlq", letter.error[:300])

    def _sleep(self, attempt: int) -> None:
        delay = min(self.backoff_max, self.backoff_base * (2 ** min(attempt, 16)))
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            if self._stop:
                raise _Stopping()
            time.sleep(min(0.05, delay))

    def _retry_transient(self, fn: Callable[[], T], what: str) -> T:
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self.stats.retries += 1
                if attempt % 10 == 0:
                    log.warning("%s: %s failed (%s), retrying", self.handler.name, what, exc)
                self._sleep(attempt)
                attempt += 1

    def _with_attempts(self, fn: Callable[[], None]) -> None:
        """Transient failures retry without limit; others up to max_attempts, then raise."""
        attempt = 0
        while True:
            try:
                self._retry_transient(fn, "apply")
                return
            except _Stopping:
                raise
            except Exception:
                attempt += 1
                if attempt >= self.max_attempts:
                    raise
                self.stats.retries += 1
                self._sleep(attempt)


def main(handler: Handler) -> None:
    """Entry point shared by the worker modules."""
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    for noisy in ("httpx", "httpx2"):  # one line per registry request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    loop = ConsumerLoop(handler)
    loop.install_signal_handlers()
    loop.run()
