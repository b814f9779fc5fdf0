"""One open-loop run at a fixed write rate, timed stage by stage for every write.

Per write (`POST /api/miners`, a user of the run's own tenants):

    t_send     the request leaves the load generator
    t_ack      201 received: the write has committed (the product's "commit")
    t_kafka    the record's timestamp on events.miner (Connect's producer stamps it as it sends)
    t_commit   the portfolio consumer committed it (`committed_at` of its page notification, page:{user_id})
    t_intel    the intel consumer committed the user's refreshed forecast (its page notification)
    t_visible  a GET /api/portfolio issued on that notification shows it (miners_total counts it)

Stages: api = t_ack - t_send; capture = t_kafka - t_ack (WAL -> Debezium -> Kafka; can be slightly negative,
Debezium may beat the HTTP answer); consume = t_commit - t_kafka; page = t_visible - t_commit; and the
product's figure total = t_visible - t_ack (commit -> the page shows it). Beside them, off the portfolio's
chain: forecast = t_intel - t_ack (commit -> the forecast refreshed). All clocks are this machine's.

Requests start on schedule whatever the answers do (open loop), so a system that falls behind meets the full
offered load and its queueing shows in the figures.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import redis
from confluent_kafka import Consumer, TopicPartition

from app.adapters.envelope_codec import EnvelopeCodec, EnvelopeError
from app.config import get_settings
from tools import db
from tools.bench import timeline
from tools.bench.cpu import CpuReport, CpuSampler
from tools.bench.speed import SpeedSampler
from tools.loadgen import MODELS, NO_ANSWER, HttpPool, LoadUser, Pacer, Response, provision_users
from tools.verify import CONSUMERS, inbox_marks, portfolio_mismatches

MAX_IN_FLIGHT = 4000
STAGES = ("api", "capture", "consume", "page", "total")


@dataclass
class Write:
    user: LoadUser
    t_send: float
    t_ack: float | None = None
    status: int | None = None
    refusal: str | None = None  # a refused write's problem type, its last part (overloaded, pipeline-behind)
    miner_id: str | None = None
    rank: int = 0  # the user's n-th acknowledged miner of this run
    t_kafka: float | None = None
    t_commit: float | None = None
    t_intel: float | None = None
    t_visible: float | None = None

    def stages(self) -> dict[str, float] | None:
        if None in (self.t_ack, self.t_kafka, self.t_commit, self.t_visible):
            return None
        return {
            "api": self.t_ack - self.t_send,
            "capture": self.t_kafka - self.t_ack,
            "consume": self.t_commit - self.t_kafka,
            "page": self.t_visible - self.t_commit,
            "total": self.t_visible - self.t_ack,
        }


class KafkaProbe:
    """Reads events.miner from its end and stamps each miner id with its record's timestamp."""

    def __init__(self) -> None:
        settings = get_settings()
        self.stamps: dict[str, float] = {}
        self._codec = EnvelopeCodec(settings.schema_registry_url)
        # librdkafka's default fetch wait (500 ms): a record's stamp is its timestamp, not when the probe reads it,
        # and a shorter wait only charges the probe's polling to Kafka's CPU per write (~2 % of a core at 20 ms).
        self._consumer = Consumer({"bootstrap.servers": settings.kafka_brokers, "group.id": f"bench-{uuid.uuid4()}",
                                   "enable.auto.commit": False})
        topic = "events.miner"
        meta = self._consumer.list_topics(topic, timeout=10).topics[topic]
        ends = [TopicPartition(topic, p, self._consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
                for p in meta.partitions]
        self._consumer.assign(ends)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self._consumer.consume(num_messages=500, timeout=0.1):
                if msg.error():
                    continue
                try:
                    env = self._codec.decode(msg.topic(), msg.value())
                except EnvelopeError:
                    continue
                if env.entity_id:
                    self.stamps[env.entity_id] = msg.timestamp()[1] / 1000

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()


class PageWatcher:
    """Listens to every page notification; hands the portfolio ones to the event loop for a visibility check."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_portfolio: Any) -> None:
        self.commits: dict[str, float] = {}
        self.intel: dict[str, float] = {}
        self._loop = loop
        self._on_portfolio = on_portfolio
        self._pubsub = redis.Redis.from_url(get_settings().redis_url, decode_responses=True).pubsub(
            ignore_subscribe_messages=True)
        self._pubsub.psubscribe("page:*")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._pubsub.get_message(timeout=0.2)
            if not msg or msg.get("type") != "pmessage":
                continue
            note = json.loads(msg["data"])
            target = self.commits if note["consumer"] == CONSUMERS[0] else self.intel
            for entity in note["entity_ids"]:
                target.setdefault(entity, note["committed_at"])
            if note["consumer"] == CONSUMERS[0]:
                self._loop.call_soon_threadsafe(self._on_portfolio, note["user_id"])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._pubsub.close()


@dataclass
class RateResult:
    label: str
    rate: float
    duration_s: float
    writes: list[Write]
    cpu: CpuReport
    checks: dict[str, Any] = field(default_factory=dict)
    speed_probe_ms: float | None = None  # tools/bench/speed.py: the median round during the run
    timeline: list[dict[str, Any]] = field(default_factory=list)  # per second (tools/bench/timeline.py)

    @property
    def acked(self) -> list[Write]:
        return [w for w in self.writes if w.status == 201]

    def summary(self) -> dict[str, Any]:
        samples = [s for w in self.acked if (s := w.stages())]
        out: dict[str, Any] = {
            "label": self.label, "rate": self.rate, "duration_s": self.duration_s,
            "offered": len(self.writes), "acknowledged": len(self.acked),
            "acknowledged_per_s": round(len(self.acked) / self.duration_s, 1),
            "errors": _count(w.status for w in self.writes if w.status != 201),
            "refused_as": _count(w.refusal for w in self.writes if w.refusal),
            "timed": len(samples), "stages_ms": {}, "checks": self.checks,
        }
        for stage in STAGES:
            values = sorted(1000 * s[stage] for s in samples)
            out["stages_ms"][stage] = percentiles(values)
        out["stages_ms"]["forecast"] = percentiles(sorted(
            1000 * (w.t_intel - w.t_ack) for w in self.acked if w.t_intel is not None and w.t_ack is not None))
        cpu_ms = self.cpu.per(len(self.acked))
        out["cpu_ms_per_write"] = {k: round(v, 3) for k, v in cpu_ms.items()}
        system = {k: v for k, v in cpu_ms.items() if k != "load generator"}
        out["cpu_ms_per_write_total"] = round(sum(system.values()), 3)
        out["cpu_cores_busy"] = round(sum(self.cpu.seconds.values()) / self.cpu.wall_s, 2)
        out["speed_probe_ms"] = self.speed_probe_ms
        out["worst_seconds"] = [timeline.describe(r) for r in timeline.worst_seconds(self.timeline)]
        out["timeline"] = self.timeline
        return out


def problem_kind(r: Response) -> str:
    """Which guard refused a write: the last part of its problem type, `http-<status>` when it names none."""
    try:
        kind = r.json().get("type") or ""
    except (ValueError, AttributeError):
        kind = ""
    return kind.rsplit(":", 1)[-1] if kind.startswith("urn:") else f"http-{r.status}"


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for v in values:
        out[str(v)] += 1
    return dict(out)


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}

    def pct(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 1)

    return {"p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99), "max": round(values[-1], 1)}


SIGN_IN_PASSES = 2  # the web's processes each keep their own caches; a user's requests reach either
SIGN_IN_CONCURRENCY = 8
SIGN_IN_TRIES = 5


async def sign_in(pool: HttpPool, users: list[LoadUser]) -> None:
    """Each user loads its portfolio before the clock starts, as a user opens the page before adding a miner.

    A user's first request to a web process verifies its token and provisions it (a database round trip on a
    thread): 1-2 ms of the web's CPU more than the requests after it. A run's users are new, so without this
    every one of them would pay it in the run's first seconds at once (400 users in 2 s at 200 writes/s), and on
    a slow or busy machine that start, more than the rate, could set the run's tail. `--cold-users` measures it
    that way. An overloaded or restarting web is asked again (5 tries, after its Retry-After or, without one,
    0.2, 0.4, 0.8 and 1.6 s); any other answer stops the benchmark."""
    async def one_by_one(todo: Iterator[LoadUser]) -> None:
        for user in todo:  # shared by the concurrent callers: each user is taken once
            for attempt in range(SIGN_IN_TRIES):
                wait = 0.2 * 2 ** attempt
                try:
                    r = await pool.request("GET", "/api/portfolio", user.auth)
                except NO_ANSWER as exc:
                    status, detail = -1, f"{type(exc).__name__}: {exc}"
                else:
                    if r.status == 200:
                        break
                    status, detail = r.status, repr(r.body[:200])
                    wait = r.retry_after(default=wait)
                if status not in (-1, 429, 503) or attempt == SIGN_IN_TRIES - 1:
                    raise RuntimeError(f"bench: signing in {user.user_id} failed ({status}) after {attempt + 1} "
                                       f"tries: {detail}")
                await asyncio.sleep(wait)

    for _ in range(SIGN_IN_PASSES):
        todo = iter(users)
        await asyncio.gather(*(one_by_one(todo) for _ in range(SIGN_IN_CONCURRENCY)))


async def run_rate(label: str, rate: float, duration: float, users: list[LoadUser], *, settle: float = 60.0,
                   during: Any = None, cold_users: bool = False) -> RateResult:
    """Offer `rate` writes/s for `duration` s over `users`; wait up to `settle` s for every write to show.
    The users are signed in first (`sign_in`) unless `cold_users`."""
    settings = get_settings()
    pool = HttpPool("127.0.0.1", settings.web_port, timeout=30)
    reader = HttpPool("127.0.0.1", settings.web_port, timeout=30)
    if not cold_users:
        await sign_in(reader, users)
    loop = asyncio.get_running_loop()
    writes: list[Write] = []
    by_user: dict[str, list[Write]] = defaultdict(list)
    checking: set[str] = set()
    pending_check: set[str] = set()

    async def check(user_id: str) -> None:
        checking.add(user_id)
        try:
            user = next(w.user for w in by_user[user_id])
            for _ in range(100):
                pending_check.discard(user_id)
                try:
                    r = await reader.request("GET", "/api/portfolio", user.auth)
                except NO_ANSWER:
                    continue  # an overloaded web: ask again; the write stays "not visible" until a GET shows it
                if r.status in (429, 503):
                    # Refused: ask again after the web's Retry-After, as a client should. Asked again every 10 ms,
                    # an overloaded web spent CPU refusing page checks that its writes needed.
                    await asyncio.sleep(r.retry_after())
                    continue
                now = time.time()
                total = r.json()["miners_total"] if r.status == 200 else -1
                waiting = False
                for w in by_user[user_id]:
                    if w.t_visible is None and w.miner_id and w.miner_id in watcher.commits:
                        if w.rank and total >= w.rank:
                            w.t_visible = now
                        else:
                            waiting = True
                if not waiting and user_id not in pending_check:
                    return
                await asyncio.sleep(0.01)
        finally:
            checking.discard(user_id)

    def on_portfolio(user_id: str) -> None:
        if user_id not in by_user:
            return
        if user_id in checking:
            pending_check.add(user_id)
        else:
            loop.create_task(check(user_id))

    probe = KafkaProbe()
    watcher = PageWatcher(loop, on_portfolio)
    cpu = CpuSampler().start()
    speed = SpeedSampler()  # how fast the machine is during this run, to compare its CPU with another's
    activity = timeline.PgActivity().start()
    ranks: dict[str, int] = defaultdict(int)
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int) -> None:
        user = users[i % len(users)]
        w = Write(user, time.time())
        writes.append(w)
        by_user[user.user_id].append(w)
        try:
            r = await pool.request("POST", "/api/miners", user.auth,
                                   {"model_id": MODELS[i % len(MODELS)], "label": f"{label} {i}"})
        except NO_ANSWER as exc:
            w.status = -1
            w.miner_id = type(exc).__name__
            return
        w.t_ack = time.time()
        w.status = r.status
        if r.status in (429, 503):
            w.refusal = problem_kind(r)
        if r.status == 201:
            ranks[user.user_id] += 1
            w.rank = ranks[user.user_id]
            w.miner_id = r.json()["id"]
            if w.miner_id in watcher.commits:
                # The pipeline beat the answer: the consumer's notification came while this write had no id
                # yet, so that check passed it over. Look now, not at the user's next notification.
                on_portfolio(user.user_id)

    t0 = time.monotonic()
    side = asyncio.create_task(during()) if during else None
    async for i in Pacer(rate, duration).ticks():
        if len(tasks) >= MAX_IN_FLIGHT:
            writes.append(Write(users[0], time.time(), status=-2))  # the generator could not even send it
            continue
        task = asyncio.create_task(one(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    elapsed = time.monotonic() - t0
    if tasks:
        await asyncio.gather(*list(tasks))
    if side:
        await side
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        missing = [w for w in writes if w.status == 201 and w.t_visible is None]
        if not missing:
            break
        for w in missing[:50]:
            if w.miner_id in watcher.commits and w.user.user_id not in checking:
                on_portfolio(w.user.user_id)
        await asyncio.sleep(0.2)
    report = cpu.stop()
    speed_ms = speed.stop()
    activity.stop()
    await asyncio.sleep(0.5)
    probe.close()
    watcher.close()
    pool.close()
    reader.close()
    for w in writes:
        if w.miner_id:
            w.t_kafka = probe.stamps.get(w.miner_id)
            w.t_commit = watcher.commits.get(w.miner_id)
            w.t_intel = watcher.intel.get(w.miner_id)
    result = RateResult(label, rate, round(elapsed, 1), writes, report, speed_probe_ms=speed_ms,
                        timeline=timeline.build(writes, cpu.series, activity.samples))
    result.checks = await asyncio.to_thread(exactly_once, result)
    if activity.error:
        result.checks["timeline"] = f"no PostgreSQL activity: {activity.error}"
    return result


def exactly_once(result: RateResult, timeout: float = 120) -> dict[str, Any]:
    """Every acknowledged write has one miner.added event, every event is in each consumer's inbox exactly once,
    and every user's portfolio equals a recomputation. A write the load generator gave up waiting for (no answer
    within its timeout) may or may not have committed: it may add an event, never a missing or doubled one."""
    tenants = sorted({w.user.tenant_id for w in result.writes})
    acked = len(result.acked)
    deadline = time.monotonic() + timeout
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        while True:
            cur.execute("SELECT id, entity_id FROM event_outbox WHERE tenant_id = ANY(%s) AND kind = 'miner.added'",
                        (tenants,))
            rows = cur.fetchall()
            events = [r[0] for r in rows]
            marks = {c: inbox_marks(cur, tenants, c) for c in CONSUMERS}
            complete = all(all(marks[c].get(e) == 1 for e in events) for c in CONSUMERS)
            if complete or time.monotonic() > deadline:
                break
            time.sleep(1)
        mismatches = portfolio_mismatches(cur, tenants)
    entities = [str(r[1]) for r in rows]
    missing = {w.miner_id for w in result.acked} - set(entities)
    unanswered = len(result.writes) - len(result.acked)
    sound = not missing and len(entities) == len(set(entities)) and len(events) <= acked + unanswered
    return {
        "events": len(events),
        "acknowledged_writes": acked,
        "acknowledged_without_event": len(missing),
        "unanswered_writes": unanswered,
        "events_of_unanswered_writes": len(events) - acked + len(missing),
        "applied_once": {c: sum(1 for e in events if marks[c].get(e) == 1) for c in CONSUMERS},
        "exactly_once": complete and sound and not mismatches,
        "portfolio_mismatches": len(mismatches),
    }


def users_for(label: str, rate: float) -> list[LoadUser]:
    """Many users over 10 tenants: about one write per user every two seconds at any rate."""
    per_tenant = max(5, int(rate * 2 / 10))
    return provision_users(f"bench-{label}-{uuid.uuid4().hex[:6]}", 10, per_tenant)
