"""GET /api/health: pipeline figures and dependency status, answered in well under a second whatever is down.

Every dependency is probed in parallel on a small process-wide thread pool, each with its own short timeout, and
the request waits at most HEALTH_BUDGET_SECONDS for all of them: a probe that has not answered by then counts as
`down` (its figures null) while it finishes in the background. A probe still running from an earlier request is
joined rather than started again (single flight), so a health poll loop against a black-holed host keeps at most
one thread per dependency busy. The Kafka figures (several admin round trips) are cached per process for
KAFKA_CACHE_SECONDS, failures included, so a poll loop does not hammer the broker.

`status` is `degraded` when a dependency is down or a figure is past its target (the contract's list: outbox
backlog growing, consumer lag, DLQ records, a stale forecast, connector not RUNNING); `reasons` says which
(an extra member the Health schema allows). A down dependency never makes health fail: it is always a 200.

Cross-tenant figures under RLS: the API role reads the outbox backlog through the SECURITY DEFINER function
hashinsight_outbox_stats() and the replication slot through pg_replication_slots (readable by every role).
forecast_freshness_sec needs the newest forecast_daily.computed_at across tenants, which RLS hides from the API
role; it is read through the SECURITY DEFINER function hashinsight_forecast_freshness() (migration 0009), and is
null only while no forecast exists yet (or on a database migrated to before 0009).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any

import requests
from sqlalchemy import text

import app
from app.adapters.cache import get_cache
from app.adapters.db import api_engine
from app.adapters.kafka_connect import ConnectClient, failure_reason
from app.adapters.kafka_health import KafkaHealth
from app.adapters.redis_client import get_redis, ping
from app.config import get_settings

HEALTH_BUDGET_SECONDS = 0.75  # the whole request waits at most this long for its probes
PROBE_TIMEOUT_SECONDS = 0.5  # socket/statement timeout of each probe
KAFKA_CACHE_SECONDS = 2.0

CONNECTOR_NAME = "hashinsight-outbox"
REPLICATION_SLOT = "hashinsight_outbox"
# Consumer group -> the topics it reads. Mirrors the worker handlers (workers/portfolio_consumer.py,
# workers/intel_consumer.py; group id = handler name); tests/integration/api/test_health_api.py keeps them in step.
CONSUMER_GROUPS: dict[str, tuple[str, ...]] = {
    "hashinsight.portfolio": ("events.miner", "events.treasury", "events.ops", "events.crm", "events.market"),
    "hashinsight.intel": ("events.miner", "events.ops", "events.market"),
}


@dataclass(frozen=True)
class Targets:
    """Past these, health is degraded. The contract names the figures; the numbers are ours."""

    outbox_oldest_unprocessed_sec: float = 60.0  # an event not delivered within a minute: the pipeline is stuck
    consumer_lag: int = 100  # records per group; a healthy consumer sits at ~0 between bursts
    dlq_recent: int = 0  # a dead letter in the last hour: something is failing now (inspect, fix, redrive)
    dlq_window_sec: float = 3600.0
    forecast_freshness_sec: float = 86_400.0  # no forecast computed for a day


TARGETS = Targets()


@dataclass
class ProbeResult:
    ok: bool
    detail: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)


# -- probes: each returns a ProbeResult and never raises (the runner turns an exception into `down`) ------------

_STATS_SQL = text(
    """SELECT s.backlog, EXTRACT(EPOCH FROM now() - s.oldest_unprocessed_at),
              (SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), r.confirmed_flush_lsn)::bigint
                 FROM pg_replication_slots r WHERE r.slot_name = :slot),
              to_regprocedure('hashinsight_forecast_freshness()') IS NOT NULL
         FROM hashinsight_outbox_stats() s"""
)
_FRESHNESS_SQL = text(
    "SELECT EXTRACT(EPOCH FROM now() - newest_computed_at) FROM hashinsight_forecast_freshness()"
)


def probe_postgres() -> ProbeResult:
    with api_engine().connect() as conn, conn.begin():
        conn.execute(text(f"SET LOCAL statement_timeout = {int(PROBE_TIMEOUT_SECONDS * 1000)}"))
        backlog, oldest_age, slot_lag, has_freshness = conn.execute(_STATS_SQL, {"slot": REPLICATION_SLOT}).one()
        freshness = conn.execute(_FRESHNESS_SQL).scalar() if has_freshness else None
    return ProbeResult(True, None, {
        "outbox_backlog": int(backlog),
        "outbox_oldest_unprocessed_sec": float(oldest_age) if oldest_age is not None else None,
        "replication_slot_lag_bytes": max(0, int(slot_lag)) if slot_lag is not None else None,
        "forecast_freshness_sec": max(0.0, round(float(freshness), 3)) if freshness is not None else None,
    })


def probe_redis() -> ProbeResult:
    health = ping(get_redis())
    if not health.ok:
        return ProbeResult(False, health.detail, {"cache_hit_rate": None})
    rate = get_cache().hit_rate()
    return ProbeResult(True, None, {"cache_hit_rate": round(rate, 4) if rate is not None else None})


_kafka: KafkaHealth | None = None
_kafka_lock = threading.Lock()


def _kafka_client() -> KafkaHealth:
    # One admin client and probe consumer per process: creating them costs a broker handshake each time.
    global _kafka
    with _kafka_lock:
        if _kafka is None:
            _kafka = KafkaHealth(get_settings().kafka_brokers, timeout=PROBE_TIMEOUT_SECONDS)
        return _kafka


def _drop_kafka_client(client: KafkaHealth) -> None:
    """After a failed probe the clients are rebuilt: a librdkafka handle that lived through a broker outage can
    keep answering from a stale state (seen: _TIMED_OUT for as long as the process lived)."""
    global _kafka
    with _kafka_lock:
        if _kafka is client:
            _kafka = None
    with contextlib.suppress(Exception):  # closing a broken client must not turn the answer into an error
        client.close()


def probe_kafka() -> ProbeResult:
    client = _kafka_client()
    try:
        lag = {group: client.consumer_lag(group, list(topics)) for group, topics in CONSUMER_GROUPS.items()}
        dlq = client.dlq_count()
        recent = client.dlq_recent(TARGETS.dlq_window_sec)
    except Exception:
        _drop_kafka_client(client)
        raise
    return ProbeResult(True, None, {"kafka_consumer_lag": lag, "dlq_count": dlq, "dlq_recent": recent})


def probe_schema_registry() -> ProbeResult:
    resp = requests.get(f"{get_settings().schema_registry_url}/subjects", timeout=PROBE_TIMEOUT_SECONDS)
    if resp.status_code != 200:
        return ProbeResult(False, f"HTTP {resp.status_code} from the schema registry")
    return ProbeResult(True, f"{len(resp.json())} subjects")


def probe_connect() -> ProbeResult:
    state = ConnectClient(get_settings().connect_url, timeout=PROBE_TIMEOUT_SECONDS).state(CONNECTOR_NAME)
    running = sum(1 for t in state.tasks if t[1] == "RUNNING")
    detail = f"outbox connector {state.connector}, {running}/{len(state.tasks)} tasks RUNNING"
    tasks = [{"id": task_id, "state": task_state, "reason": failure_reason(trace) if task_state == "FAILED" else None}
             for task_id, task_state, trace in state.tasks]
    return ProbeResult(True, detail, {"connector_state": state.connector, "connector_running": state.running,
                                      "connector_tasks": tasks})


# -- runner ---------------------------------------------------------------------------------------------------


class ProbeRunner:
    """Runs named probes in parallel with single flight per probe and optional per-probe result caching."""

    def __init__(self, workers: int = 8, clock: Callable[[], float] = time.monotonic) -> None:
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="health-probe")
        self._clock = clock
        # Re-entrant: a probe that finishes before add_done_callback() runs its callback (which takes the mutex)
        # at once, in the submitting thread, which still holds the mutex. A plain Lock deadlocked there.
        self._mutex = threading.RLock()
        self._inflight: dict[str, Future[ProbeResult]] = {}
        self._cached: dict[str, tuple[float, ProbeResult]] = {}

    @staticmethod
    def _run(probe: Callable[[], ProbeResult]) -> ProbeResult:
        try:
            return probe()
        except Exception as exc:  # a probe failing is the answer "down", never a 500
            return ProbeResult(False, f"{type(exc).__name__}: {exc}"[:500])

    def _submit(self, name: str, probe: Callable[[], ProbeResult], cache_for: float) -> Future[ProbeResult]:
        with self._mutex:
            cached = self._cached.get(name)
            if cached is not None and self._clock() - cached[0] < cache_for:
                done: Future[ProbeResult] = Future()
                done.set_result(cached[1])
                return done
            future = self._inflight.get(name)
            if future is None:
                future = self._inflight[name] = self._executor.submit(self._run, probe)
                future.add_done_callback(lambda f, n=name: self._finish(n, f, cache_for))
            return future

    def _finish(self, name: str, future: Future[ProbeResult], cache_for: float) -> None:
        with self._mutex:
            self._inflight.pop(name, None)
            if cache_for > 0 and not future.cancelled() and future.exception() is None:
                self._cached[name] = (self._clock(), future.result())

    def run(self, probes: dict[str, tuple[Callable[[], ProbeResult], float]],
            budget: float) -> dict[str, ProbeResult]:
        futures = {name: self._submit(name, fn, cache_for) for name, (fn, cache_for) in probes.items()}
        wait_futures(futures.values(), timeout=budget)
        return {
            name: f.result() if f.done() else ProbeResult(False, f"no answer within {int(budget * 1000)} ms")
            for name, f in futures.items()
        }

    def clear_cache(self) -> None:
        with self._mutex:
            self._cached.clear()


_runner = ProbeRunner()


def probes() -> dict[str, tuple[Callable[[], ProbeResult], float]]:
    """Dependency name (the contract's `dependencies` keys) -> (probe, seconds its result is reused)."""
    return {
        "postgres": (probe_postgres, 0.0),
        "redis": (probe_redis, 0.0),
        "kafka": (probe_kafka, KAFKA_CACHE_SECONDS),
        "schema_registry": (probe_schema_registry, 0.0),
        "connect": (probe_connect, 0.0),
    }


def _reasons(results: dict[str, ProbeResult], health: dict[str, Any], targets: Targets) -> list[str]:
    reasons = [f"{name} is down: {r.detail}" for name, r in results.items() if not r.ok]
    oldest = results["postgres"].figures.get("outbox_oldest_unprocessed_sec")
    if oldest is not None and oldest > targets.outbox_oldest_unprocessed_sec:
        reasons.append(f"outbox backlog of {health['outbox_backlog']} rows, oldest undelivered for {oldest:.0f} s")
    for group, lag in health["kafka_consumer_lag"].items():
        if lag > targets.consumer_lag:
            reasons.append(f"consumer group {group} lags by {lag} records")
    # Dead letters stay on events.dlq for 30 days (dlq_count); only recent ones say something is failing now.
    recent = results["kafka"].figures.get("dlq_recent")
    if recent is not None and recent > targets.dlq_recent:
        reasons.append(f"{recent} dead letters on events.dlq in the last {targets.dlq_window_sec / 3600:.0f} h")
    freshness = health["forecast_freshness_sec"]
    if freshness is not None and freshness > targets.forecast_freshness_sec:
        reasons.append(f"newest forecast computed {freshness:.0f} s ago")
    state = health["connector_state"]
    if state is not None and state != "RUNNING":
        reasons.append(f"outbox connector is {state}")
    for task in health["connector_tasks"] or []:
        if task["state"] != "RUNNING":
            why = f": {task['reason']}" if task["reason"] else ""
            reasons.append(f"outbox connector task {task['id']} is {task['state']}{why}"[:500])
    if state == "RUNNING" and health["connector_tasks"] == []:
        reasons.append("outbox connector has no task")
    return reasons


def public_summary(health: dict[str, Any]) -> dict[str, Any]:
    """What anyone may read: status and figures. Dependency details, connector task reasons and `reasons` hold
    exception text (hosts, user names, SQL) and go only to ops:read callers (app/entrypoints/http/health.py)."""
    summary = {k: v for k, v in health.items() if k != "reasons"}
    summary["dependencies"] = {name: {"status": d["status"], "detail": None}
                               for name, d in health["dependencies"].items()}
    if health.get("connector_tasks") is not None:
        summary["connector_tasks"] = [{**t, "reason": None} for t in health["connector_tasks"]]
    return summary


def check_health(*, runner: ProbeRunner | None = None, budget: float | None = None,
                 targets: Targets | None = None) -> dict[str, Any]:
    """The contract's Health document (plus `reasons`)."""
    results = (runner or _runner).run(probes(), HEALTH_BUDGET_SECONDS if budget is None else budget)

    def figure(probe: str, name: str) -> Any:
        return results[probe].figures.get(name)

    health: dict[str, Any] = {
        "status": "ok",
        "version": app.__version__,
        "outbox_backlog": figure("postgres", "outbox_backlog"),
        # additionalProperties are integers: a group whose lag is unknown (Kafka down) is left out.
        "kafka_consumer_lag": figure("kafka", "kafka_consumer_lag") or {},
        "dlq_count": figure("kafka", "dlq_count"),
        "forecast_freshness_sec": figure("postgres", "forecast_freshness_sec"),
        "cache_hit_rate": figure("redis", "cache_hit_rate"),
        "replication_slot_lag_bytes": figure("postgres", "replication_slot_lag_bytes"),
        "connector_state": figure("connect", "connector_state"),
        "connector_tasks": figure("connect", "connector_tasks"),
        "dependencies": {
            name: {"status": "ok" if r.ok else "down", "detail": r.detail} for name, r in results.items()
        },
    }
    reasons = _reasons(results, health, targets or TARGETS)
    health["status"] = "degraded" if reasons else "ok"
    health["reasons"] = reasons
    return health
