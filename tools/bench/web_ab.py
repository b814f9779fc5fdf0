"""Two versions of the web side by side under one load: what a change costs the web per request.

    HASHINSIGHT_ENV=development python -m tools.bench.web_ab BASE [NEW] [--rate 50] [--seconds 20] [--rounds 5]

BASE and NEW are git revisions; NEW defaults to the working tree. Each revision other than the working tree is
checked out in a throwaway worktree (removed afterwards). Each is served by one uvicorn worker of its own, on its
own port, against the running stack (`make dev`). The load generator sends both servers the same paced load,
request by request in alternating order: at each tick a `POST /api/miners` and then the writer's
`GET /api/portfolio` (what the page does on the notification). Each round prints the CPU each server's process
used per pair, read from /proc, and the ratio NEW / BASE. The last line gives the median of each and of the
ratios.

Why side by side: this machine's speed moves by half within an hour, so two runs one after the other differ by
more than most changes are worth. Two servers measured over the same seconds see the same machine: an A/A run
(a revision against itself, five rounds) gave ratios of 0.979 to 0.998, median 0.993, so a ratio resolves a
change worth a couple of per cent and more.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.config import get_settings
from tools.bench.cpu import TICK, process_table
from tools.loadgen import MODELS, HttpPool, LoadUser, Pacer, provision_users

ROOT = Path(__file__).resolve().parents[2]
WORKING_TREE = "."


@dataclass
class Side:
    revision: str
    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    per_pair_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)


def tree_cpu_s(root: int) -> float:
    """CPU seconds used so far by a process and all its descendants."""
    stats, children = process_table()
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
            todo += children.get(pid, [])
    return total / TICK


def summarize(base: Sequence[float], new: Sequence[float]) -> dict[str, Any]:
    """Medians of each side's CPU per pair, and of the per-round ratios new / base (pure)."""
    if not base or len(base) != len(new):
        raise ValueError("one figure per round for each side")
    ratios = [n / b for b, n in zip(base, new, strict=True)]
    return {"base_ms": round(statistics.median(base), 3), "new_ms": round(statistics.median(new), 3),
            "ratio": round(statistics.median(ratios), 3), "ratios": [round(r, 3) for r in ratios]}


@contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """The working tree itself, or a throwaway worktree of `revision`."""
    if revision == WORKING_TREE:
        yield ROOT
        return
    parent = Path(tempfile.mkdtemp(prefix="hashinsight-web-ab-"))
    path = parent / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(path), revision], check=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False)
        shutil.rmtree(parent, ignore_errors=True)


def start(side: Side, log_dir: Path) -> None:
    env = dict(os.environ, WEB_PORT=str(side.port), HASHINSIGHT_SERVICE="web")
    log = open(log_dir / f"web-{side.port}.log", "wb")  # noqa: SIM115 - open for the server's life
    side.process = subprocess.Popen(
        [sys.executable, "-m", "app.entrypoints.serve", "--port", str(side.port), "--workers", "1"],
        cwd=side.directory, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(side: Side, log_dir: Path, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if side.process is not None and side.process.poll() is not None:
            tail = (log_dir / f"web-{side.port}.log").read_text(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"the web of {side.revision} exited with {side.process.returncode}:\n"
                               + "\n".join(tail))
        try:
            if httpx.get(f"http://127.0.0.1:{side.port}/api/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the web of {side.revision} did not answer /api/health within {timeout_s:.0f} s")


async def drive(sides: list[Side], users: list[LoadUser], rate: float, seconds: float, rounds: int) -> None:
    pools = [HttpPool("127.0.0.1", side.port, timeout=30) for side in sides]
    for pool in pools:  # every user provisioned and cached on both, before any round
        for user in users:
            for _ in range(2):
                await pool.request("GET", "/api/portfolio", user.auth)

    async def pair(i: int, n: int) -> None:
        user = users[n % len(users)]
        r = await pools[i].request("POST", "/api/miners", user.auth, {"model_id": MODELS[n % len(MODELS)],
                                                                        "label": f"web-ab {n}"})
        sides[i].statuses[r.status] += 1
        r = await pools[i].request("GET", "/api/portfolio", user.auth)
        sides[i].statuses[r.status] += 1

    for r in range(rounds):
        before = [tree_cpu_s(s.process.pid) for s in sides if s.process is not None]
        tasks: list[asyncio.Task[None]] = []
        sent = 0
        async for n in Pacer(rate, seconds).ticks():
            for i in (range(len(sides)) if n % 2 == 0 else reversed(range(len(sides)))):
                tasks.append(asyncio.create_task(pair(i, n)))
            sent += 1
        await asyncio.gather(*tasks)
        after = [tree_cpu_s(s.process.pid) for s in sides if s.process is not None]
        for side, b, a in zip(sides, before, after, strict=True):
            side.per_pair_ms.append(1000 * (a - b) / sent)
        print(f"web-ab: round {r + 1}/{rounds}: " + ", ".join(
            f"{s.revision} {s.per_pair_ms[-1]:.3f} ms" for s in sides)
            + f", ratio {sides[1].per_pair_ms[-1] / sides[0].per_pair_ms[-1]:.3f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The web's CPU per write and page read, two revisions at once.")
    parser.add_argument("base", help="git revision to compare against (e.g. HEAD, HEAD~1)")
    parser.add_argument("new", nargs="?", default=WORKING_TREE, help="git revision, or . for the working tree")
    parser.add_argument("--rate", type=float, default=50, help="pairs per second to each server (default 50)")
    parser.add_argument("--seconds", type=float, default=20, help="length of a round (default 20)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0 or args.rounds < 1:
        parser.error("--rate and --seconds must be positive, --rounds at least 1")
    port = get_settings().web_port + 60
    log_dir = Path(tempfile.mkdtemp(prefix="hashinsight-web-ab-logs-"))
    with checkout(args.base) as base_dir, checkout(args.new) as new_dir:
        sides = [Side(args.base, base_dir, port), Side(args.new, new_dir, port + 1)]
        try:
            for side in sides:
                start(side, log_dir)
            for side in sides:
                wait_ready(side, log_dir)
            users = provision_users(f"web-ab-{uuid.uuid4().hex[:6]}", 10, 20)
            print(f"web-ab: {args.rounds} rounds of {args.seconds:g} s at {args.rate:g} pairs/s to each server "
                  f"(logs in {log_dir})", flush=True)
            asyncio.run(drive(sides, users, args.rate, args.seconds, args.rounds))
        finally:
            for side in sides:
                if side.process is not None and side.process.poll() is None:
                    side.process.terminate()
            for side in sides:
                if side.process is not None:
                    side.process.wait(30)
    summary = summarize(sides[0].per_pair_ms, sides[1].per_pair_ms)
    refused = {s.revision: dict(s.statuses) for s in sides if set(s.statuses) - {200, 201}}
    print(f"web-ab: CPU per POST + GET, median of {args.rounds}: {args.base} {summary['base_ms']} ms, "
          f"{args.new} {summary['new_ms']} ms; ratio {args.new} / {args.base} {summary['ratio']} "
          f"(rounds: {', '.join(map(str, summary['ratios']))})")
    if refused:
        print(f"web-ab: answers other than 200/201: {refused}; the figures include them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
