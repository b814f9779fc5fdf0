"""A run second by second: what the writes met, and what the machine was doing beside them.

A rung's percentiles say how slow its slowest writes were, not when, nor beside what. Under load the misses
come in bursts of a few seconds (PostgreSQL taking a whole core for a while, say), and only a timeline shows
which. Per second of a run, from the first write sent:

- the writes sent in that second: how many, how many refused (any answer but 201, or none), and the P95 of
  their `api` and `total` stages (tools/bench/openloop.py);
- the cores each process group used in that second (the CPU sampler's per-second readings, tools/bench/cpu.py);
- what PostgreSQL was doing, sampled once a second from `pg_stat_activity`: the tables autovacuum was working
  on, and the most sessions seen waiting on a lock or on the WAL.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import time
from collections import defaultdict
from typing import Any

from tools import db

# "autovacuum: VACUUM ANALYZE public.event_outbox" / "autovacuum: ANALYZE public.users (to prevent wraparound)"
_AUTOVACUUM = re.compile(r"^autovacuum: (.+?) (?:\w+\.)?(\S+?)(?: \(to prevent wraparound\))?$")
_ACTIVITY = """
SELECT backend_type, wait_event_type, wait_event, state, left(query, 200)
  FROM pg_stat_activity
 WHERE pid <> pg_backend_pid() AND (datname = current_database() OR backend_type = 'autovacuum worker')
"""


def autovacuum_target(query: str) -> str | None:
    """`autovacuum: VACUUM ANALYZE public.users` -> `VACUUM ANALYZE users`; None for anything else."""
    m = _AUTOVACUUM.match(query or "")
    return f"{m.group(1)} {m.group(2)}" if m else None


class PgActivity:
    """Once a second: the tables autovacuum works on, and the sessions waiting on a lock or on the WAL."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.samples: list[tuple[float, list[str], int, int]] = []  # (time, autovacuum, lock waits, WAL waits)
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> PgActivity:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
                while not self._stop.is_set():
                    cur.execute(_ACTIVITY)
                    self.samples.append((time.time(), *summarize(cur.fetchall())))
                    self._stop.wait(self.interval)
        except Exception as exc:  # a timeline without PostgreSQL's side is still a timeline: say why it is missing
            self.error = f"{type(exc).__name__}: {exc}"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def summarize(rows: list[tuple[Any, ...]]) -> tuple[list[str], int, int]:
    """pg_stat_activity rows -> (autovacuum targets, sessions waiting on a lock, sessions waiting on the WAL)."""
    vacuum, locks, wal = [], 0, 0
    for backend_type, wait_type, wait_event, state, query in rows:
        if backend_type == "autovacuum worker":
            if target := autovacuum_target(query):
                vacuum.append(target)
            continue
        if backend_type != "client backend" or state != "active":
            continue
        if wait_type == "Lock":  # a row, or an advisory lock such as a tenant's audit chain
            locks += 1
        elif str(wait_event).startswith("WAL"):  # WALWrite, WALSync, WALInsert...: a commit waiting for the WAL
            wal += 1
    return sorted(vacuum), locks, wal


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    values.sort()
    return round(values[min(len(values) - 1, math.floor(0.95 * len(values)))], 1)


def build(writes: list[Any], cpu_series: list[tuple[float, dict[str, float]]],
          pg: list[tuple[float, list[str], int, int]]) -> list[dict[str, Any]]:
    """Per second from the first write sent to the last CPU reading (the run and its settling)."""
    if not writes:
        return []
    t0 = min(w.t_send for w in writes)
    end = max([t for t, _ in cpu_series] + [w.t_send for w in writes])
    seconds = int(end - t0) + 1
    rows: list[dict[str, Any]] = [{"t": i, "sent": 0, "refused": 0, "api": [], "total": [], "cores": {},
                                   "autovacuum": set(), "lock_waits": 0, "wal_waits": 0} for i in range(seconds)]
    for w in writes:
        row = rows[min(seconds - 1, int(w.t_send - t0))]
        row["sent"] += 1
        if w.status != 201:
            row["refused"] += 1
            continue
        if w.t_ack is not None:
            row["api"].append(1000 * (w.t_ack - w.t_send))
        if w.t_visible is not None and w.t_ack is not None:
            row["total"].append(1000 * (w.t_visible - w.t_ack))
    for (t_a, a), (t_b, b) in itertools.pairwise(cpu_series):
        i = int((t_a + t_b) / 2 - t0)
        if 0 <= i < seconds and t_b > t_a:
            cores: dict[str, float] = defaultdict(float)
            for group, used in b.items():
                cores[group] += (used - a.get(group, 0.0)) / (t_b - t_a)
            rows[i]["cores"] = {g: round(c, 2) for g, c in sorted(cores.items()) if c >= 0.01}
    for t, vacuum, locks, wal in pg:
        i = int(t - t0)
        if 0 <= i < seconds:
            rows[i]["autovacuum"].update(vacuum)
            rows[i]["lock_waits"] = max(rows[i]["lock_waits"], locks)
            rows[i]["wal_waits"] = max(rows[i]["wal_waits"], wal)
    for row in rows:
        row["api_p95_ms"], row["total_p95_ms"] = _p95(row.pop("api")), _p95(row.pop("total"))
        row["autovacuum"] = sorted(row["autovacuum"])
    return rows


def worst_seconds(rows: list[dict[str, Any]], n: int = 3) -> list[dict[str, Any]]:
    """The seconds whose writes fared worst: most refused, then the highest total P95."""
    sent = [r for r in rows if r["sent"]]
    return sorted(sent, key=lambda r: (r["refused"], r["total_p95_ms"] or 0.0), reverse=True)[:n]


def describe(row: dict[str, Any]) -> str:
    busiest = sorted(row["cores"].items(), key=lambda kv: -kv[1])[:3]
    parts = [f"t={row['t']}s: {row['sent']} sent, {row['refused']} refused, total P95 {row['total_p95_ms']} ms",
             "cores " + ", ".join(f"{g} {c:.2f}" for g, c in busiest) if busiest else "cores ?"]
    if row["lock_waits"] or row["wal_waits"]:
        parts.append(f"waiting on a lock {row['lock_waits']}, on the WAL {row['wal_waits']}")
    if row["autovacuum"]:
        parts.append("autovacuum: " + ", ".join(row["autovacuum"]))
    return "; ".join(parts)
