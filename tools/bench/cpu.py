"""CPU seconds per process group, read from /proc while a benchmark runs.

Groups are the stack's supervised services and their children (uvicorn's workers, PostgreSQL's backends),
PostgreSQL split by what each backend is for: the role in its process title (`postgres: <role> <db> ...`),
the walsender Debezium reads the WAL through, and the server's own background processes. The load generator
(this process) is a group of its own, so a reader can see that it does not eat the machine it measures.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TICK = os.sysconf("SC_CLK_TCK")
SERVICES = ("postgres", "redis", "kafka", "kafka-1", "kafka-2", "kafka-3", "registry", "connect", "connect-watchdog",
            "web", "worker-portfolio", "worker-intel")


def _stat(pid: int) -> tuple[int, int, float] | None:
    """(ppid, utime + stime ticks, start time ticks) of a process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[11]) + int(fields[12]), float(fields[19])


def process_table() -> tuple[dict[int, tuple[int, int, float]], dict[int, list[int]]]:
    """Every process's (ppid, CPU ticks, start ticks), and each process's children, read from /proc now."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            stats[int(entry)] = st
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _cpu, _start) in stats.items():
        children[ppid].append(pid)
    return stats, children


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def postgres_group(cmdline: str) -> str:
    """`postgres: hashinsight_worker hashinsight 127.0.0.1(5432) idle` -> postgres:hashinsight_worker."""
    if not cmdline.startswith("postgres: "):
        return "postgres:background"  # the postmaster itself
    words = cmdline.split()
    if words[1] == "walsender":
        return "postgres:walsender (debezium)"
    if len(words) >= 3 and not words[1].endswith(":") and words[1] not in ("logical", "autovacuum", "background"):
        return f"postgres:{words[1]}"
    return "postgres:background"


SUPERVISOR = "supervisord"


def roots() -> dict[int, str]:
    """The supervised services' process ids -> group name (worker instances numbered)."""
    out: dict[int, str] = {}
    for svc in SERVICES:
        proc = subprocess.run(["bash", str(ROOT / "infra" / "stack.sh"), "pid", svc], capture_output=True,
                              text=True, timeout=60)
        pids = [int(p) for p in proc.stdout.split() if p.isdigit()]
        for i, pid in enumerate(pids, 1):
            out[pid] = f"{svc}-{i}" if svc.startswith("worker-") else svc
    try:  # the supervisor itself (its children are the services above): it reads every service's log pipe
        home = Path(os.environ.get("STACK_HOME") or ROOT / ".stack")
        out[int((home / "run" / "supervisord.pid").read_text().strip())] = SUPERVISOR
    except (OSError, ValueError):
        pass
    return out


@dataclass
class CpuReport:
    seconds: dict[str, float]  # group -> CPU seconds over the window
    wall_s: float

    def per(self, n: int) -> dict[str, float]:
        """Milliseconds of CPU per item (write) for each group."""
        return {g: 1000 * s / n for g, s in self.seconds.items()} if n else {}


class CpuSampler:
    """Samples every process of the groups once a second; `stop()` gives the CPU each group used."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._roots = roots()
        self._roots[os.getpid()] = "load generator"
        self._first: dict[int, int] = {}
        self._last: dict[int, int] = {}
        self._group: dict[int, str] = {}
        # (time, CPU seconds each group has used since start) at every sample: the per-second timeline's cores
        self.series: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> CpuSampler:
        with open("/proc/uptime") as f:
            self._t0_ticks = float(f.read().split()[0]) * TICK
        self._wall0 = time.monotonic()
        self._sample()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        stats, children = process_table()
        for root, group in self._roots.items():
            todo = [root]
            while todo:
                pid = todo.pop()
                if pid not in stats:
                    continue
                if group != SUPERVISOR:
                    todo += children.get(pid, [])
                _ppid, cpu, start = stats[pid]
                name = postgres_group(_cmdline(pid)) if group == "postgres" else group
                if pid not in self._first:
                    # A process born during the window counts from zero; an older one from its first sample.
                    self._first[pid] = 0 if start >= self._t0_ticks else cpu
                self._last[pid] = cpu
                self._group[pid] = name
        self.series.append((time.time(), self._used()))

    def _used(self) -> dict[str, float]:
        seconds: dict[str, float] = defaultdict(float)
        for pid, group in self._group.items():
            seconds[group] += (self._last[pid] - self._first[pid]) / TICK
        return dict(sorted(seconds.items()))

    def stop(self) -> CpuReport:
        self._stop.set()
        self._thread.join(5)
        self._sample()
        return CpuReport(self.series[-1][1], time.monotonic() - self._wall0)
