"""Fault injection on the running system: `make chaos` (several minutes), `--short` in `make test`.

While clients write steadily (adding miners and changing their status, each logical write retried with the same
Idempotency-Key until it is answered, as a real client would), the services are killed and restarted one after
another: each worker SIGKILLed twice, web SIGKILLed, Kafka Connect restarted, Kafka SIGKILLed (supervisord
starts it again), Redis restarted, PostgreSQL stopped for 5 s, the registry restarted, the portfolio consumers
scaled 1 -> 4 -> 1. Nobody helps: after each fault the suite only watches /api/health until it is ok again.

Then, with the database as ground truth, it checks that every acknowledged write is present and applied once;
that every committed outbox event is in each consumer's inbox exactly once; that every user's derived portfolio
equals a full recomputation; that events.dlq received only the record poisoned on purpose at the end; that no
request was answered 500; and that health was ok within 30 s of each fault ending. It prints a table and writes
the figures as JSON (`--json`).

"Healthy" is /api/health's `status: ok`. Dead letters older than the run (from earlier work on this stack) keep
health degraded for an hour by design; such a reason is disregarded as long as no dead letter was added
during the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from app.adapters.dead_letters import DLQ_TOPIC, DeadLetterQueue
from app.adapters.tokens import encode_token
from app.config import get_settings
from tools import db
from tools.loadgen import MODELS, NO_ANSWER, HttpPool, LoadUser, new_key, provision_users
from tools.verify import CONSUMERS, inbox_marks, portfolio_mismatches

ROOT = Path(__file__).resolve().parents[1]
HEALTHY_WITHIN_S = 30.0
POISON = b"chaos: this record is poison on purpose"
NEXT_STATUS = {"active": "maintenance", "maintenance": "idle", "idle": "active"}


# ---------------------------------------------------------------------------------------------- the stack


def stack(*args: str, timeout: float = 600) -> str:
    proc = subprocess.run(["bash", str(ROOT / "infra" / "stack.sh"), *args], capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"stack.sh {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def _ready(service: str) -> bool:
    settings = get_settings()
    try:
        if service == "kafka":
            AdminClient({"bootstrap.servers": settings.kafka_brokers}).list_topics(timeout=2)
        elif service == "web":
            urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/api/health", timeout=2).read()
    except Exception:  # noqa: BLE001 - not back yet
        return False
    return True


def kill(service: str, timeout: float = 180) -> None:
    """SIGKILL the service's (first) process, then wait until supervisord has it back and it answers: the
    fault ends when the service is up again, as it does for a restart."""
    pids = [int(p) for p in stack("pid", service).split()]
    if not pids:
        raise RuntimeError(f"{service} is not running")
    os.kill(pids[0], signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = [int(p) for p in stack("pid", service).split()]
        if now and now[0] != pids[0] and _ready(service):
            return
        time.sleep(0.5)
    raise RuntimeError(f"{service} was not back within {timeout:.0f} s")


# ---------------------------------------------------------------------------------------------- the clients


@dataclass
class Write:
    n: int
    user: LoadUser
    kind: str  # add | status
    key: str
    label: str | None = None
    miner_id: str | None = None
    to_status: str | None = None
    attempts: int = 0
    acked: bool = False
    refused: int | None = None  # a 4xx answer: the write was refused, not lost
    codes: Counter[str] = field(default_factory=Counter)


@dataclass
class Miner:
    id: str
    status: str


class Writers:
    """Logical writes started at a steady rate (open loop), each retried with its key until it is answered."""

    def __init__(self, pool: HttpPool, users: list[LoadUser], rate: float, run_id: str, retry_for: float) -> None:
        self.pool = pool
        self.users = users
        self.rate = rate
        self.run_id = run_id
        self.retry_for = retry_for
        self.writes: list[Write] = []
        self.miners: dict[str, list[Miner]] = {u.user_id: [] for u in users}
        self._user_locks = {u.user_id: asyncio.Lock() for u in users}
        self._tasks: set[asyncio.Task[None]] = set()
        self._rng = random.Random(7)

    async def run(self, stop: asyncio.Event) -> None:
        start = time.perf_counter()
        n = 0
        while not stop.is_set():
            due = start + n / self.rate
            delay = due - time.perf_counter()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    break
                except asyncio.TimeoutError:
                    pass
            task = asyncio.create_task(self._one(n))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            n += 1

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def _one(self, n: int) -> None:
        user = self.users[n % len(self.users)]
        # A user's writes run one at a time, so its status changes apply to the status it last saw.
        async with self._user_locks[user.user_id]:
            owned = self.miners[user.user_id]
            if owned and self._rng.random() < 0.25:
                miner = self._rng.choice(owned)
                write = Write(n, user, "status", new_key(), miner_id=miner.id, to_status=NEXT_STATUS[miner.status])
                path, method, body = f"/api/miners/{miner.id}/status", "PATCH", {"status": write.to_status,
                                                                                   "reason": "chaos"}
            else:
                label = f"chaos {self.run_id} {n}"
                write = Write(n, user, "add", new_key(), label=label)
                path, method, body = "/api/miners", "POST", {"model_id": MODELS[n % len(MODELS)], "label": label}
            self.writes.append(write)
            answer = await self._until_answered(write, method, path, body)
            if answer is None or not write.acked:
                return
            if write.kind == "add":
                write.miner_id = answer["id"]
                owned.append(Miner(answer["id"], answer["status"]))
            else:
                next(m for m in owned if m.id == write.miner_id).status = write.to_status or "active"

    async def _until_answered(self, write: Write, method: str, path: str, body: dict[str, Any]) -> Any:
        deadline = time.monotonic() + self.retry_for
        headers = {**write.user.auth, "Idempotency-Key": write.key}
        while True:
            write.attempts += 1
            try:
                r = await self.pool.request(method, path, headers, body)
            except (*NO_ANSWER, ValueError) as exc:
                write.codes[type(exc).__name__] += 1
                wait = 0.5
            else:
                if r.status < 300:
                    write.acked = True
                    return r.json()
                write.codes[str(r.status)] += 1
                if r.status < 500 and r.status != 429:
                    write.refused = r.status
                    return None
                wait = r.retry_after()
            if time.monotonic() + wait > deadline:
                return None
            await asyncio.sleep(wait)


# ---------------------------------------------------------------------------------------------- health


class HealthWatch:
    def __init__(self, pool: HttpPool, dlq_before: int | None) -> None:
        self.pool = pool
        self.dlq_before = dlq_before
        self.last: dict[str, Any] | None = None
        # The detailed reasons are for operators (an ops:read token).
        self.headers = {"Authorization": "Bearer " + encode_token("chaos-operator", "chaos-ops", ["ops:read"])}

    async def healthy(self) -> bool:
        try:
            r = await self.pool.request("GET", "/api/health", self.headers)
            doc = r.json()
        except (*NO_ANSWER, ValueError):
            self.last = None
            return False
        self.last = doc
        if doc["status"] == "ok":
            return True
        old_letters_only = doc.get("dlq_count") is not None and doc["dlq_count"] == self.dlq_before
        reasons = [r for r in doc.get("reasons", []) if not (old_letters_only and "dead letters on events.dlq" in r)]
        return not reasons

    async def wait_ok(self, since: float, timeout: float) -> float | None:
        self.seen: Counter[str] = Counter()
        while time.monotonic() - since < timeout:
            if await self.healthy():
                return time.monotonic() - since
            reasons = (self.last or {}).get("reasons") or ["web not answering"]
            # Counted without the figures, so "lags by 12" and "lags by 40" are one reason.
            self.seen.update({" ".join(w for w in r.split() if not w.replace(".", "").isdigit())[:160]
                              for r in reasons})
            await asyncio.sleep(0.5)
        return None


# ---------------------------------------------------------------------------------------------- faults


@dataclass
class FaultResult:
    name: str
    injected_s: float  # seconds into the run
    fault_s: float  # how long the fault lasted: until the killed or restarted service answered again
    healthy_after_s: float | None  # from the fault's end until /api/health was ok
    reasons_seen: list[str] = field(default_factory=list)  # why health was not ok meanwhile (polls)


def faults() -> list[tuple[str, Callable[[], None]]]:
    """Each fault as a blocking step; it returns when the fault has ended: the service it killed, stopped or
    restarted is up and answering again (supervisord restarts a killed one by itself)."""

    def pg_stop() -> None:
        stack("stop", "postgres")
        time.sleep(5)
        stack("up", "postgres")

    def scale() -> None:
        stack("scale", "worker-portfolio", "4")
        time.sleep(15)
        stack("scale", "worker-portfolio", "1")

    return [
        ("SIGKILL worker-portfolio (1st)", lambda: kill("worker-portfolio")),
        ("SIGKILL worker-intel (1st)", lambda: kill("worker-intel")),
        ("Kafka Connect restart", lambda: stack("restart", "connect")),
        ("SIGKILL worker-portfolio (2nd)", lambda: kill("worker-portfolio")),
        ("SIGKILL Kafka (supervisord restarts it)", lambda: kill("kafka")),
        ("Redis restart", lambda: stack("restart", "redis")),
        ("SIGKILL worker-intel (2nd)", lambda: kill("worker-intel")),
        ("PostgreSQL stopped for 5 s", pg_stop),
        ("schema registry restart", lambda: stack("restart", "registry")),
        ("SIGKILL web", lambda: kill("web")),
        ("portfolio consumers 1 -> 4 -> 1", scale),
    ]


# ---------------------------------------------------------------------------------------------- verification


def _poison(user: LoadUser) -> None:
    producer = Producer({"bootstrap.servers": get_settings().kafka_brokers})
    producer.produce("events.miner", key=user.user_id.encode(), value=POISON)
    if producer.flush(30):
        raise RuntimeError("the poison record was not delivered")


def _dead_letters_since(since_ms: int, timeout: float = 60, want: int = 2) -> list[Any]:
    settings = get_settings()
    dlq = DeadLetterQueue(Producer({"bootstrap.servers": settings.kafka_brokers}),
                          SchemaRegistryClient({"url": settings.schema_registry_url}))
    c = Consumer({"bootstrap.servers": settings.kafka_brokers, "group.id": f"chaos-probe-{uuid.uuid4()}",
                  "enable.auto.commit": False})
    try:
        parts = sorted(c.list_topics(DLQ_TOPIC, timeout=10).topics[DLQ_TOPIC].partitions)
        letters: list[Any] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Asked again each round: a partition with no letter since `since_ms` yet answers -1, and the
            # consumers may dead-letter the poison record only after the first round.
            starts = c.offsets_for_times([TopicPartition(DLQ_TOPIC, p, since_ms) for p in parts], timeout=10)
            ends = {p: c.get_watermark_offsets(TopicPartition(DLQ_TOPIC, p), timeout=10)[1] for p in parts}
            letters = []
            for tp in starts:
                if tp.offset < 0 or tp.offset >= ends[tp.partition]:
                    continue
                c.assign([TopicPartition(DLQ_TOPIC, tp.partition, tp.offset)])
                while True:
                    msgs = c.consume(500, timeout=2)
                    letters += [dlq.decode(m.value()) for m in msgs if not m.error()]
                    if not msgs or msgs[-1].offset() >= ends[tp.partition] - 1:
                        break
            if len(letters) >= want:
                break
            time.sleep(1)
        return letters
    finally:
        c.close()


def _wait_drained(tenants: list[str], timeout: float = 180) -> bool:
    """Until the outbox is delivered and every consumer holds an inbox mark for every miner event."""
    deadline = time.monotonic() + timeout
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        while time.monotonic() < deadline:
            cur.execute(
                """SELECT count(*) FILTER (WHERE NOT processed),
                          count(*) FILTER (WHERE kind LIKE 'miner.%%' AND EXISTS (
                              SELECT 1 FROM unnest(%s::text[]) c (name) WHERE NOT EXISTS (
                                  SELECT 1 FROM consumer_inbox i WHERE i.event_id = o.id
                                     AND i.consumer_name = c.name)))
                     FROM event_outbox o WHERE tenant_id = ANY(%s)""",
                (list(CONSUMERS), tenants),
            )
            backlog, missing = cur.fetchone()
            if backlog == 0 and missing == 0:
                return True
            time.sleep(1)
    return False


def verify(writers: Writers, tenants: list[str]) -> dict[str, Any]:
    acked = [w for w in writers.writes if w.acked]
    adds = [w for w in acked if w.kind == "add"]
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT id::text, status FROM miners WHERE tenant_id = ANY(%s)", (tenants,))
        stored = dict(cur.fetchall())
        cur.execute("SELECT label, count(*) FROM miners WHERE tenant_id = ANY(%s) GROUP BY label HAVING count(*) > 1",
                    (tenants,))
        doubled_rows = cur.fetchall()
        cur.execute("SELECT id, kind FROM event_outbox WHERE tenant_id = ANY(%s)", (tenants,))
        outbox = dict(cur.fetchall())
        inbox = {c: inbox_marks(cur, tenants, c) for c in CONSUMERS}
        mismatches = portfolio_mismatches(cur, tenants)
    final_status: dict[str, str] = {}
    for w in sorted(acked, key=lambda w: w.n):
        if w.kind == "add" and w.miner_id:
            final_status.setdefault(w.miner_id, "active")
        elif w.kind == "status" and w.miner_id and w.to_status:
            final_status[w.miner_id] = w.to_status
    lost = [m for m in final_status if m not in stored]
    wrong_status = [m for m, s in final_status.items() if m in stored and stored[m] != s]
    miner_events = [e for e, kind in outbox.items() if kind.startswith("miner.")]
    missing = {c: [e for e in miner_events if e not in marks] for c, marks in inbox.items()}
    doubled_marks = {c: [e for e, n in marks.items() if n > 1] for c, marks in inbox.items()}
    codes: Counter[str] = Counter()
    for w in writers.writes:
        codes.update(w.codes)
    return {
        "writes_attempted": len(writers.writes),
        "writes_acknowledged": len(acked),
        "writes_refused": Counter(str(w.refused) for w in writers.writes if w.refused),
        "writes_unanswered": sum(1 for w in writers.writes if not w.acked and not w.refused),
        "adds_acknowledged": len(adds),
        "events_committed": len(outbox),
        "events_applied": {c: sum(1 for e in miner_events if e in marks) for c, marks in inbox.items()},
        "lost_writes": lost + wrong_status,
        "events_missing_from_inbox": {c: len(v) for c, v in missing.items()},
        "doubled": len(doubled_rows) + sum(len(v) for v in doubled_marks.values()),
        "portfolio_mismatches": mismatches,
        "answers_5xx": {k: v for k, v in codes.items() if k.startswith("5")},
        "client_errors": {k: v for k, v in codes.items() if not k[0].isdigit()},
        "retried_attempts": sum(w.attempts - 1 for w in writers.writes),
    }


# ---------------------------------------------------------------------------------------------- the run


@dataclass
class Settings:
    rate: float
    settle_s: float
    users: int
    tenants: int
    retry_for_s: float


SHORT = Settings(rate=6.0, settle_s=3.0, users=4, tenants=3, retry_for_s=240.0)
LONG = Settings(rate=20.0, settle_s=20.0, users=5, tenants=4, retry_for_s=240.0)


async def run(cfg: Settings, base_port: int, log: Callable[[str], None]) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    users = provision_users(f"chaos-{run_id}", cfg.tenants, cfg.users)
    tenants = sorted({u.tenant_id for u in users})
    pool = HttpPool("127.0.0.1", base_port, timeout=10.0)
    health_pool = HttpPool("127.0.0.1", base_port, timeout=5.0)
    start_ms = int(time.time() * 1000)
    first = await health_pool.request("GET", "/api/health")
    watch = HealthWatch(health_pool, first.json().get("dlq_count"))
    if await watch.wait_ok(time.monotonic(), 120) is None:
        raise RuntimeError(f"the system is not healthy before the run: {watch.last and watch.last.get('reasons')}")
    writers = Writers(pool, users, cfg.rate, run_id, cfg.retry_for_s)
    stop = asyncio.Event()
    load = asyncio.create_task(writers.run(stop))
    t0 = time.monotonic()
    results: list[FaultResult] = []
    await asyncio.sleep(cfg.settle_s)
    for name, step in faults():
        injected = time.monotonic()
        log(f"chaos: {name}")
        await asyncio.to_thread(step)
        ended = time.monotonic()
        healed = await watch.wait_ok(ended, HEALTHY_WITHIN_S * 4)
        reasons = [f"{r} (x{n})" for r, n in watch.seen.most_common(4)]
        results.append(FaultResult(name, round(injected - t0, 1), round(ended - injected, 1),
                                   None if healed is None else round(healed, 1), reasons))
        log(f"chaos:   fault lasted {ended - injected:.1f} s; healthy "
            + (f"after {healed:.1f} s" if healed is not None else f"NOT within {HEALTHY_WITHIN_S * 4:.0f} s"))
        await asyncio.sleep(cfg.settle_s)
    stop.set()
    await load
    log("chaos: load stopped; waiting for in-flight writes and for the pipeline to drain")
    await writers.drain()
    drained = await asyncio.to_thread(_wait_drained, tenants)
    await asyncio.to_thread(_poison, users[0])
    letters = await asyncio.to_thread(_dead_letters_since, start_ms)
    figures = await asyncio.to_thread(verify, writers, tenants)
    pool.close()
    health_pool.close()
    unexpected_letters = [f"{x.consumer}: {x.error[:120]}" for x in letters if x.original_value != POISON]
    poisoned = sorted(x.consumer for x in letters if x.original_value == POISON)
    checks = {
        "every acknowledged write is present and applied once": not figures["lost_writes"] and not figures["doubled"],
        "every committed event is in each consumer's inbox exactly once":
            drained and not any(figures["events_missing_from_inbox"].values()),
        "every portfolio equals a full recomputation": not figures["portfolio_mismatches"],
        "the DLQ holds only the poisoned record": not unexpected_letters
            and poisoned == ["hashinsight.intel", "hashinsight.portfolio"],
        "no 500 was answered": figures["answers_5xx"].get("500", 0) == 0,
        "health ok within 30 s of each fault ending":
            all(r.healthy_after_s is not None and r.healthy_after_s <= HEALTHY_WITHIN_S for r in results),
        "every write was answered": figures["writes_unanswered"] == 0,
    }
    return {
        "run_id": run_id,
        "settings": asdict(cfg),
        "duration_s": round(time.monotonic() - t0, 1),
        "faults": [asdict(r) for r in results],
        "figures": figures,
        "dead_letters": {"poisoned": poisoned, "unexpected": unexpected_letters},
        "checks": checks,
        "passed": all(checks.values()),
    }


def table(result: dict[str, Any]) -> str:
    lines = ["", f"{'fault':<42} {'at s':>6} {'lasted s':>9} {'healthy after s':>16}"]
    for f in result["faults"]:
        healthy = f"{f['healthy_after_s']:.1f}" if f["healthy_after_s"] is not None else "NOT HEALTHY"
        lines.append(f"{f['name']:<42} {f['injected_s']:>6.1f} {f['fault_s']:>9.1f} {healthy:>16}")
        lines += [f"    degraded by: {r}" for r in f["reasons_seen"][:3]]
    fig = result["figures"]
    lines += [
        "",
        f"writes attempted {fig['writes_attempted']}, acknowledged {fig['writes_acknowledged']}, "
        f"refused {dict(fig['writes_refused']) or 0}, unanswered {fig['writes_unanswered']} "
        f"(retried attempts: {fig['retried_attempts']})",
        f"events committed {fig['events_committed']}, applied {fig['events_applied']}",
        f"lost {len(fig['lost_writes'])}, doubled {fig['doubled']}, "
        f"missing from an inbox {fig['events_missing_from_inbox']}, portfolio mismatches "
        f"{len(fig['portfolio_mismatches'])}",
        f"5xx answers by code {fig['answers_5xx'] or 'none'}; connection errors {fig['client_errors'] or 'none'}",
        f"dead letters: poisoned {result['dead_letters']['poisoned']}, unexpected "
        f"{len(result['dead_letters']['unexpected'])}",
        "",
    ]
    lines += [f"  [{'ok' if ok else 'FAIL'}] {name}" for name, ok in result["checks"].items()]
    lines.append(f"chaos: {'PASSED' if result['passed'] else 'FAILED'} in {result['duration_s']:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fault injection on the running system.")
    parser.add_argument("--short", action="store_true", help="the short form (make test): brief settles, low rate")
    parser.add_argument("--rate", type=float, help="logical writes per second")
    parser.add_argument("--settle", type=float, help="seconds of steady load between faults")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    cfg = SHORT if args.short else LONG
    cfg = Settings(args.rate or cfg.rate, args.settle if args.settle is not None else cfg.settle_s, cfg.users,
                   cfg.tenants, cfg.retry_for_s)
    print("chaos: starting web and workers (supervised)", file=sys.stderr)
    stack("up", "web", "worker-portfolio", "worker-intel")
    result = asyncio.run(run(cfg, get_settings().web_port, lambda m: print(m, file=sys.stderr, flush=True)))
    print(table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
