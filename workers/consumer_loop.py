"""The one consumer loop every worker runs; a worker only supplies its Handler.

Per batch:
1. poll what has arrived (up to `batch_size` records; the first one is waited for, the rest are not, unless the
   handler asks for a batch window: then up to that long, so a worker whose effect is off the page's path
   pays its per-batch costs once for many events);
2. decode each through the envelope codec; a record that can never decode goes to the dead-letter topic;
3. group the events by tenant and user (a user's records share a partition, so a group keeps their order);
4. take the Redis locks of every user in the batch (app/adapters/redis_lock.py, one round trip) and open ONE
   database transaction for the whole batch. Per tenant, inside a savepoint: the users' advisory locks (the
   database guard), the inbox claims (a duplicate key means "already applied"), and the handler's effect
   once for all the new events of the tenant (set-based: many users, one statement per table). The outbox
   rows of every event read are marked in the same transaction. Then one commit: one WAL flush per batch;
5. after the commit, the handler's after-commit step (cache invalidation, page notifications);
6. commit the Kafka offsets read so far, asynchronously: the database first, then Kafka, so a crash in between
   re-delivers events the inbox already holds, and they are skipped. At most one offset commit per
   `commit_interval` (0.2 s), and at once when the loop falls idle: under load a batch holds a few events, and a
   commit per batch cost the broker's group coordinator more than the batch's records did.

Failures:
- Transient ones (PostgreSQL, Redis, registry, Kafka unreachable; a lock still held; a deadlock) are retried
  with capped exponential backoff for as long as it takes. While it waits the loop pauses its partitions and
  keeps polling, so the group never counts it as dead (max.poll.interval.ms) and rebalances are served.
- Anything else fails only its own part: a failed tenant is retried user by user, a failed user event by
  event, and a single event that still fails after `max_attempts` goes to events.dlq with the reason. A dead
  letter too large for Kafka is truncated (keeping the reason), so no record can wedge its partition.
- Rebalances: on revoke the offsets already processed are committed; on lost they are dropped (the new owner
  re-reads those records and the inbox dedupes them). An offset commit that fails is logged, never fatal.
- SIGTERM/SIGINT finish the batch in hand, commit, and exit cleanly. A fatal Kafka error exits the process;
  the process supervisor starts it again.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

import redis
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from sqlalchemy import Engine

from app.adapters import inbox, metrics, tracing
from app.adapters.db import worker_engine
from app.adapters.dead_letters import DeadLetter, DeadLetterQueue, dead_letter_for, truncated
from app.adapters.envelope_codec import Envelope, EnvelopeCodec, EnvelopeError
from app.adapters.pipeline_lag import LagPublisher
from app.adapters.prepared import Prepared
from app.adapters.redis_client import get_redis
from app.adapters.redis_lock import LockSet
from app.adapters.transient import is_transient
from app.config import Settings, get_settings
from app.service_layer.unit_of_work import UnitOfWork
from workers.telemetry import Applied, LoopTelemetry

log = logging.getLogger("hashinsight.consumer")
T = TypeVar("T")

UserEvents = Mapping[str, list[Envelope]]  # user id -> that user's events, in partition order
_MARK_OUTBOX = Prepared("mark_outbox", "SELECT hashinsight_mark_outbox_processed(CAST(:ids AS text[]))")


class Handler(Protocol):
    """What a worker supplies.

    `apply` runs inside the batch transaction, once per tenant, with that tenant's new events by user (the unit
    of work is scoped to the tenant); what it returns is handed to `after_commit` for the same tenant, which
    runs after the commit with every event of the tenant's users that the batch read, new or already applied
    (a retry after a lost commit must still invalidate what the first try committed).
    """

    name: str
    topics: Sequence[str]
    # The one handler that marks the outbox rows of every event it reads as processed (see 0007).
    marks_outbox: bool
    # Optional `reports_lag = True`: the live worker publishes its pipeline lag for the web's freshness guard
    # (workers/telemetry.py); the page's consumer does.

    def accepts(self, kind: str) -> bool: ...

    def lock_key(self, user_id: str) -> str | None: ...

    def apply(self, uow: UnitOfWork, events: UserEvents) -> Any: ...

    def after_commit(self, tenant_id: str, events: UserEvents, applied: Any) -> None: ...


BATCH_WINDOW_ENV = "HASHINSIGHT_BATCH_WINDOW_MS"


def batch_window_s(handler: object, environ: Mapping[str, str] = os.environ) -> float:
    """How long a batch may wait for more records after its first: $HASHINSIGHT_BATCH_WINDOW_MS, else the
    handler's `batch_window_ms` (0 when it has none: take what has arrived and go)."""
    raw = environ.get(BATCH_WINDOW_ENV, "").strip()
    if raw:
        try:
            ms = float(raw)
        except ValueError:
            raise ValueError(f"{BATCH_WINDOW_ENV} must be a number of milliseconds, not {raw!r}") from None
    else:
        ms = float(getattr(handler, "batch_window_ms", 0))
    if not 0 <= ms <= 5000:  # NaN fails this too
        raise ValueError(f"batch window must be 0..5000 ms, not {ms:g}")
    return ms / 1000


# Health counts a group lagging by over 100 records as degraded (app/service_layer/health.py): commits spaced by
# 0.2 s leave at most ~40 uncommitted at 200 events/s.
COMMIT_INTERVAL_S = 0.2


# -- counters -------------------------------------------------------------------------------------------------


@dataclass
class LoopStats:
    batches: int = 0
    records: int = 0
    applied: int = 0
    duplicates: int = 0
    skipped: int = 0
    recalculations: int = 0  # users whose effect ran (once per user per batch, however many events)
    dead_lettered: int = 0
    retries: int = 0
    commit_failures: int = 0
    rebalances: int = 0
    dead_letter_reasons: list[str] = field(default_factory=list)


@dataclass
class _Item:
    msg: Message
    envelope: Envelope


Groups = OrderedDict[str, OrderedDict[str, list[_Item]]]  # tenant -> user -> items


@dataclass
class _GroupResult:
    tenant_id: str
    users: dict[str, list[_Item]]
    fresh: int
    duplicates: int
    fresh_users: int
    applied: Any
    fresh_ids: frozenset[str] = frozenset()


class _Stopping(Exception):
    """Raised inside a retry wait when a stop was requested: leave the batch uncommitted."""


def _groups_of(items: list[_Item]) -> Groups:
    """Tenant -> user -> items. Tenants in sorted order, so every transaction takes its advisory locks in one
    global order; a user's items keep their partition order."""
    groups: Groups = OrderedDict()
    for item in items:
        env = item.envelope
        groups.setdefault(env.tenant_id, OrderedDict()).setdefault(env.user_id, []).append(item)
    return OrderedDict(sorted(groups.items()))


def _items(groups: Groups) -> list[_Item]:
    return [i for users in groups.values() for items in users.values() for i in items]


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
        batch_window: float = 0.0,
        max_attempts: int = 3,
        backoff_base: float = 0.1,
        backoff_max: float = 5.0,
        extra_consumer_config: dict[str, object] | None = None,
        bypass_inbox: bool = False,
        lock_wait_s: float = 10.0,
        commit_interval: float = COMMIT_INTERVAL_S,
        # Short, as it is extended while held: a SIGKILLed worker's locks hold up its restart for at most this long.
        lock_ttl_ms: int = 10_000,
    ) -> None:
        self.handler = handler
        self.settings = settings or get_settings()
        self.engine = engine or worker_engine()
        self.redis = redis_client or get_redis(self.settings.redis_url)
        self.locks = LockSet(self.redis, ttl_ms=lock_ttl_ms, wait_s=lock_wait_s)
        registry = SchemaRegistryClient({"url": self.settings.schema_registry_url})
        self.codec = EnvelopeCodec(self.settings.schema_registry_url, client=registry)
        self.dlq = DeadLetterQueue(
            Producer({"bootstrap.servers": self.settings.kafka_brokers, "enable.idempotence": True,
                      "message.max.bytes": 1_000_000, "reconnect.backoff.max.ms": 1000}),
            registry,
        )
        self.group_id = group_id or handler.name
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.batch_window = batch_window
        self.commit_interval = commit_interval
        self._last_commit = 0.0  # time.monotonic() of the last offset commit sent
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.bypass_inbox = bypass_inbox
        self.stats = LoopStats()
        self.telemetry = LoopTelemetry(handler.name)
        self._stop = False
        self._paused = False
        # Offsets processed (next offset to read) and not yet confirmed committed, per partition.
        self._done: dict[tuple[str, int], int] = {}
        # Records a partition assigned during a retry wait delivered; they open the next batch.
        self._held: list[Message] = []
        # The partitions this member owns, as the rebalance callbacks said (readable from any thread).
        self.owned: set[tuple[str, int]] = set()
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
            # The broker answers a fetch as soon as a record arrives (fetch.min.bytes 1): the wait only bounds how
            # often an idle consumer asks again. At 50 ms the two workers' idle fetches cost Kafka ~2 % of a core.
            "fetch.wait.max.ms": 200,
            # librdkafka waits up to 10 s between reconnects by default: after a broker restart that is 10 s
            # of stalled pipeline for nothing.
            "reconnect.backoff.max.ms": 1000,
            "on_commit": self._on_commit,
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
        self.consumer.subscribe(
            list(self.handler.topics), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        log.info("%s consuming %s as group %s", self.handler.name, ", ".join(self.handler.topics), self.group_id)
        try:
            while not self._stop and not (until and until()):
                # Wait for the first record; then take what has already arrived, or what arrives within the
                # batch window (consume() returns when the batch is full or the window is over).
                msgs, self._held = self._held, []
                if not msgs:
                    first = self.consumer.poll(self.poll_timeout)
                    if first is None:
                        self._commit_done(asynchronous=True)  # idle: nothing to save by waiting longer
                        continue
                    msgs = [first]
                if len(msgs) < self.batch_size:
                    msgs += self.consumer.consume(num_messages=self.batch_size - len(msgs),
                                                  timeout=self.batch_window)
                records = [m for m in msgs if self._usable(m)]
                if not records:
                    continue
                try:
                    self.process_batch(records)
                except _Stopping:
                    log.info("stop requested during retries; batch left for redelivery")
                    break
                finally:
                    self._resume()
                self._commit_offsets(records)
            self._commit_done(asynchronous=False)
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
            raise KafkaException(err)
        log.warning("kafka: %s", err)
        return False

    # -------------------------------------------------------------------------------------------- offsets

    def _commit_offsets(self, records: list[Message]) -> None:
        if self._failpoint == "crash_after_db_commit":
            log.error("failpoint crash_after_db_commit: exiting before the offset commit")
            os._exit(17)
        for m in records:
            key = (m.topic(), m.partition())
            self._done[key] = max(self._done.get(key, -1), m.offset() + 1)
        # Asynchronous: a commit that never lands only means those records are read again, and skipped. Spaced:
        # the offsets of batches in between go with the next commit (a crash re-reads them; the inbox skips them).
        if time.monotonic() - self._last_commit >= self.commit_interval:
            self._commit_done(asynchronous=True)

    def _commit_done(self, *, asynchronous: bool, only: set[tuple[str, int]] | None = None) -> None:
        # The callbacks' record, not consumer.assignment(): that call is a trip into the client's locks on every
        # batch, and the two agree (a revoked partition leaves `owned` only after its final commit here).
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._done.items()
                   if (t, p) in self.owned and (only is None or (t, p) in only)]
        if not offsets:
            return
        self._last_commit = time.monotonic()
        try:
            self.consumer.commit(offsets=offsets, asynchronous=asynchronous)
        except KafkaException as exc:
            self.stats.commit_failures += 1
            log.warning("%s: offset commit failed (%s); those records will be read again", self.handler.name, exc)
            return
        if not asynchronous:
            for tp in offsets:
                if self._done.get((tp.topic, tp.partition)) == tp.offset:
                    del self._done[(tp.topic, tp.partition)]

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if err is not None:
            self.stats.commit_failures += 1
            log.warning("%s: offset commit failed (%s); those records will be read again", self.handler.name, err)
            return
        for tp in partitions:
            if tp.error is None and self._done.get((tp.topic, tp.partition)) == tp.offset:
                del self._done[(tp.topic, tp.partition)]

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.stats.rebalances += 1
        self.owned |= {(tp.topic, tp.partition) for tp in partitions}
        log.info("%s: assigned %s", self.handler.name, _names(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.stats.rebalances += 1
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        log.info("%s: revoked %s", self.handler.name, _names(partitions))
        # What this consumer finished is committed before the partitions move, so the next owner starts after it.
        self._commit_done(asynchronous=False, only=revoked)
        self._forget(revoked)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.stats.rebalances += 1
        log.warning("%s: lost %s; their uncommitted records go to the next owner", self.handler.name,
                    _names(partitions))
        self._forget({(tp.topic, tp.partition) for tp in partitions})

    def _forget(self, keys: set[tuple[str, int]]) -> None:
        """Partitions no longer ours: their pending offsets and held records go with them."""
        self.owned -= keys
        for key in keys:
            self._done.pop(key, None)
        self._held = [m for m in self._held if (m.topic(), m.partition()) not in keys]

    # -------------------------------------------------------------------------------------------- a batch

    def process_batch(self, records: list[Message]) -> None:
        self.stats.batches += 1
        self.stats.records += len(records)
        self.telemetry.batch_received(records)
        items: list[_Item] = []
        seen: list[str] = []
        for msg in records:
            envelope = self._decode(msg)
            if envelope is None:
                continue
            seen.append(envelope.id)
            if not self.handler.accepts(envelope.kind):
                self.stats.skipped += 1
                self.telemetry.skipped(msg, envelope)
                continue
            items.append(_Item(msg, envelope))
        marks = seen if self.handler.marks_outbox else []
        if items:
            self._run(_groups_of(items), marks)
        elif marks:
            self._retry_transient(lambda: self._in_transaction(Groups(), marks), "outbox marking")

    def _run(self, groups: Groups, marks: list[str]) -> None:
        """Apply `groups` in one transaction; whatever fails is split (tenants, users, events) and retried."""
        try:
            failed = self._retry_transient(lambda: self._in_transaction(groups, marks), "apply")
        except _Stopping:
            raise
        except Exception as exc:  # noqa: BLE001 - not transient, and not confined to one tenant
            if marks:
                self._retry_transient(lambda: self._in_transaction(Groups(), marks), "outbox marking")
            self._split(groups, exc)
            return
        for tenant_id, exc in failed:
            self._split(OrderedDict([(tenant_id, groups[tenant_id])]), exc)

    def _split(self, groups: Groups, exc: BaseException) -> None:
        items = _items(groups)
        if len(items) == 1:
            self._last_attempts(items[0], exc)
            return
        if len(groups) > 1:
            parts = [OrderedDict([(t, users)]) for t, users in groups.items()]
        else:
            (tenant_id, users), = groups.items()
            if len(users) > 1:
                parts = [OrderedDict([(tenant_id, OrderedDict([(u, its)]))]) for u, its in users.items()]
            else:
                (user_id, its), = users.items()
                parts = [OrderedDict([(tenant_id, OrderedDict([(user_id, [i])]))]) for i in its]
        log.warning("%s: %d events failed together (%s); retrying them in %d parts",
                    self.handler.name, len(items), exc, len(parts))
        for part in parts:
            self._run(part, [])

    def _last_attempts(self, item: _Item, exc: BaseException) -> None:
        """One event that failed on its own: `max_attempts` in all, then the dead-letter topic."""
        groups = _groups_of([item])
        for attempt in range(1, self.max_attempts):
            self.stats.retries += 1
            self.telemetry.retried("apply", exc)
            self._sleep(attempt)
            try:
                failed = self._retry_transient(lambda: self._in_transaction(groups, []), "apply")
            except _Stopping:
                raise
            except Exception as again:  # noqa: BLE001
                exc = again
                continue
            if not failed:
                return
            exc = failed[0][1]
        self._dead_letter(item.msg, exc, attempts=self.max_attempts, event_id=item.envelope.id)

    def _in_transaction(self, groups: Groups, marks: list[str]) -> list[tuple[str, BaseException]]:
        """One transaction for the whole batch; returns the tenants whose part failed (not transiently)."""
        keys = [k for users in groups.values() for u in users if (k := self.handler.lock_key(u)) is not None]
        results: list[_GroupResult] = []
        failed: list[tuple[str, BaseException]] = []
        waited = time.monotonic()
        with self.locks.hold(keys):
            self.telemetry.locks_taken(time.monotonic() - waited)
            first_tenant = next(iter(groups), None) or "-"
            with UnitOfWork(self.engine, first_tenant) as uow:
                for tenant_id, users in groups.items():
                    uow.set_tenant(tenant_id)
                    savepoint = uow.conn.begin_nested()
                    try:
                        results.append(self._apply_tenant(uow, tenant_id, users))
                        savepoint.commit()
                    except Exception as exc:
                        if is_transient(exc) or isinstance(exc, _Stopping):
                            raise  # the whole transaction rolls back and is retried
                        savepoint.rollback()
                        failed.append((tenant_id, exc))
                if marks:
                    _MARK_OUTBOX(uow.conn, {"ids": marks})
                uow.commit()
        self.telemetry.committed(Applied(i.msg, i.envelope, i.envelope.id in r.fresh_ids)
                                 for r in results for its in r.users.values() for i in its)
        for r in results:
            self.stats.applied += r.fresh
            self.stats.duplicates += r.duplicates
            self.stats.recalculations += r.fresh_users
        for r in results:
            self._after_commit(r)
        return failed

    def _apply_tenant(self, uow: UnitOfWork, tenant_id: str, users: Mapping[str, list[_Item]]) -> _GroupResult:
        inbox.guard_users(uow.conn, self.handler.name, tenant_id, list(users))
        marks = [inbox.Mark(i.envelope.id, i.envelope.kind, u) for u, its in users.items() for i in its]
        fresh_ids = inbox.claim_many(uow.conn, self.handler.name, tenant_id, marks, force=self.bypass_inbox)
        fresh: dict[str, list[Envelope]] = {}
        for user_id, its in users.items():
            new = [i.envelope for i in its if i.envelope.id in fresh_ids]
            if new:
                fresh[user_id] = new
        applied = self.handler.apply(uow, fresh) if fresh else None
        return _GroupResult(tenant_id, dict(users), len(fresh_ids), len(marks) - len(fresh_ids), len(fresh),
                            applied, frozenset(fresh_ids))

    def _after_commit(self, result: _GroupResult) -> None:
        events = {u: [i.envelope for i in its] for u, its in result.users.items()}
        try:
            # Redis down: retried with the rest (the effect is committed; only the caches wait for it).
            self._retry_transient(lambda: self.handler.after_commit(result.tenant_id, events, result.applied),
                                  "after-commit")
        except _Stopping:
            raise
        except Exception:  # noqa: BLE001 - the effect is committed; a stale cache expires by its TTL
            log.exception("%s: after-commit step failed for tenant %s", self.handler.name, result.tenant_id)

    # -------------------------------------------------------------------------------------------- the outbox

    def _decode(self, msg: Message) -> Envelope | None:
        try:
            return self._retry_transient(lambda: self.codec.decode(msg.topic(), msg.value()), "decode")
        except EnvelopeError as exc:
            self._dead_letter(msg, exc, attempts=1, event_id=None)
            return None

    # -------------------------------------------------------------------------------------------- failures

    def _dead_letter(self, msg: Message, exc: BaseException, attempts: int, event_id: str | None) -> None:
        letter = dead_letter_for(msg, exc, attempts, self.handler.name, event_id)
        try:
            self._retry_transient(lambda: self.dlq.publish(letter), "dead-letter publish")
        except _Stopping:
            raise
        except Exception as publish_error:  # noqa: BLE001 - e.g. too large for the topic
            letter = self._publish_truncated(letter, publish_error)
        self.stats.dead_lettered += 1
        self.stats.dead_letter_reasons.append(letter.error[:200])
        self.telemetry.dead_lettered(msg, letter.error_class, letter.error, event_id)
        log.warning("%s: %s/%d@%d -> %s: %s", self.handler.name, msg.topic(), msg.partition(), msg.offset(),
                    "events.dlq", letter.error[:300])

    def _publish_truncated(self, letter: DeadLetter, publish_error: BaseException) -> DeadLetter:
        """A dead letter Kafka refused: keep its reason, cut the rest; wait (never drop) until it is stored."""
        small = truncated(letter, publish_error)
        log.error("%s: dead letter for %s/%d@%d refused (%s); publishing it truncated", self.handler.name,
                  letter.original_topic, letter.original_partition, letter.original_offset, publish_error)
        attempt = 0
        while True:
            try:
                self._retry_transient(lambda small=small: self.dlq.publish(small), "dead-letter publish")
                return small
            except _Stopping:
                raise
            except Exception as exc:  # noqa: BLE001 - the partition waits rather than losing the record
                if attempt % 10 == 0:
                    log.error("%s: truncated dead letter not stored either (%s); retrying", self.handler.name, exc)
                self._sleep(attempt)
                attempt += 1
                small = replace(small, error=small.error[:500])

    def _sleep(self, attempt: int) -> None:
        """Back off; meanwhile pause the partitions and keep polling, so the group keeps this member."""
        delay = min(self.backoff_max, self.backoff_base * (2 ** min(attempt, 16)))
        deadline = time.monotonic() + delay
        while True:
            if self._stop:
                raise _Stopping()
            self._keepalive()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.05, left))

    def _keepalive(self) -> None:
        try:
            if not self._paused:
                assignment = self.consumer.assignment()
                if assignment:
                    self.consumer.pause(assignment)
                self._paused = True
            msg = self.consumer.poll(0)
            if msg is not None and msg.error() is None:
                # A partition assigned during the pause delivered a record: keep it for the next batch and pause
                # the partition behind it, so resuming continues after it (no seek whose effect depends on how
                # the client orders a seek and a pause).
                self._held.append(msg)
                self.consumer.pause([TopicPartition(msg.topic(), msg.partition())])
        except (KafkaException, RuntimeError) as exc:
            log.debug("keepalive poll: %s", exc)

    def _resume(self) -> None:
        if not self._paused:
            return
        self._paused = False
        try:
            assignment = self.consumer.assignment()
            if assignment:
                self.consumer.resume(assignment)
        except (KafkaException, RuntimeError) as exc:
            log.warning("resuming partitions: %s", exc)

    def _retry_transient(self, fn: Callable[[], T], what: str) -> T:
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self.stats.retries += 1
                self.telemetry.retried(what, exc)
                if attempt % 10 == 0:
                    log.warning("%s: %s failed (%s: %s), retrying", self.handler.name, what, type(exc).__name__,
                                str(exc)[:300])
                self._sleep(attempt)
                attempt += 1


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"


def main(handler: Handler) -> None:
    """Entry point shared by the worker modules."""
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    for noisy in ("httpx", "httpx2"):  # one line per registry request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    tracing.configure(os.environ.get("HASHINSIGHT_SERVICE") or handler.name)
    metrics.serve_worker_metrics()
    loop = ConsumerLoop(handler, batch_window=batch_window_s(handler), extra_consumer_config={
        # librdkafka's statistics feed the per-partition lag gauge of this worker's /metrics.
        "statistics.interval.ms": 5000,
        "stats_cb": lambda stats: metrics.record_kafka_stats(handler.name, stats),
    })
    if getattr(handler, "reports_lag", False):  # the live worker only: a replay's lag is history, not load
        loop.telemetry.lag = LagPublisher(loop.redis)
    loop.install_signal_handlers()
    loop.run()
