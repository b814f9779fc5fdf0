"""How fast this machine's cores are at the moment: a fixed piece of Python, timed in CPU seconds.

The machine is shared, and its speed moves within a day by more than a round's gains: the same code at 100
writes/s has cost from 9.6 to 14.5 ms of CPU per write in one day, every process slower with it. A CPU
figure is comparable with another only at the same speed, so each run times this probe while it goes on and
reports the median round beside its CPU per write (`speed_probe_ms`; lower is faster). The probe runs in a
process of its own (`SpeedSampler`), a round every two seconds: the load generator's event loop does not wait for
it, and its CPU (under 1 % of a core) is counted with the load generator's, outside the system's.

The work is what the Python processes spend their time on: small dicts, string formatting, JSON, hashing. It is
CPU time, not wall time, so a core taken away from the probe (steal, other processes) does not count; a core that
runs slower (a busy sibling thread, a cold cache) does, as it does for every process of the stack.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from app.adapters.process import exit_with_parent

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 9
ITEMS = 2_000
EVERY_S = 2.0


def work(items: int = ITEMS) -> int:
    """One round of the fixed work; returns a checksum so none of it can be skipped."""
    acc = 0
    for i in range(items):
        row = {"id": i, "label": f"miner {i}", "status": "active" if i % 3 else "idle", "hashrate": i * 0.5}
        text = json.dumps(row)
        acc += len(text) + hashlib.sha256(text.encode()).digest()[0] + len(json.loads(text)["label"])
    return acc


def probe_ms(rounds: int = ROUNDS, clock: Callable[[], float] = time.process_time,
             job: Callable[[], object] = work) -> float:
    """The median CPU milliseconds of one round: the median, so one interrupted round does not move it."""
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    times = []
    for _ in range(rounds):
        start = clock()
        job()
        times.append(1000 * (clock() - start))
    return round(statistics.median(times), 2)


class SpeedSampler:
    """Times one round every `every` seconds in a child process while a run goes on; `stop()` gives the median."""

    def __init__(self, every: float = EVERY_S) -> None:
        self.samples: list[float] = []
        self._proc = subprocess.Popen([sys.executable, "-m", "tools.bench.speed", "--every", str(every)], cwd=ROOT,
                                      stdout=subprocess.PIPE, text=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.samples.append(float(line))

    def stop(self) -> float | None:
        """The median round in CPU milliseconds, or None if none finished."""
        self._proc.terminate()
        self._proc.wait(10)
        self._thread.join(5)
        return round(statistics.median(self.samples), 2) if self.samples else None


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Print the CPU milliseconds of one round of fixed work, repeatedly.")
    p.add_argument("--every", type=float, default=EVERY_S, help="seconds between rounds")
    args = p.parse_args(argv)
    exit_with_parent()  # a benchmark that dies leaves no probe behind
    while True:
        print(probe_ms(rounds=1), flush=True)
        time.sleep(args.every)


if __name__ == "__main__":
    main()
