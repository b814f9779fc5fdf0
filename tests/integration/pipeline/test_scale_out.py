"""1, 2 and 4 portfolio consumers in one group, as separate processes; one is SIGKILLed mid-stream.

The partitions move to the survivors (or, with one consumer, to its restart, which the process supervisor does
in production); records the killed one had read but not committed are read again by their new owner and the
inbox skips those already applied. Afterwards every event is in the inbox exactly once and every portfolio
matches its fleet.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.pipeline.harness import Fleet, add_miner, new_fleets, portfolio_row, start_group_at_end
from tools import db
from workers.portfolio_consumer import PortfolioHandler

ROOT = Path(__file__).resolve().parents[3]
EVENTS = 120
WORKER = ("import sys; from workers.consumer_loop import main; from workers.portfolio_consumer import "
          "PortfolioHandler; h = PortfolioHandler(); h.name = sys.argv[1]; main(h)")


def _spawn(group: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", WORKER, group], cwd=ROOT, env=dict(os.environ),
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _applied(group: str, tenants: list[str]) -> tuple[int, int]:
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(
            """SELECT count(*), count(DISTINCT i.event_id) FROM event_outbox o
                 JOIN consumer_inbox i ON i.event_id = o.id AND i.consumer_name = %s
                WHERE o.tenant_id = ANY(%s)""",
            (group, tenants),
        )
        return cur.fetchone()


@pytest.mark.parametrize("consumers", [1, 2, 4])
def test_a_consumer_group_survives_a_killed_member(pipeline, consumers, tmp_path):
    group = f"test.scale{consumers}.{uuid.uuid4().hex[:8]}"
    start_group_at_end(group, list(PortfolioHandler.topics))
    fleets = new_fleets("scale", 12, tenants=3)
    tenants = sorted({f.tenant_id for f in fleets})
    log = tmp_path / "consumers.log"
    procs = [_spawn(group, log) for _ in range(consumers)]
    written: list[tuple[Fleet, str]] = []

    def write() -> None:
        for i in range(EVENTS):
            fleet = fleets[i % len(fleets)]
            written.append((fleet, add_miner(fleet)))
            time.sleep(0.02)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while len(written) < EVENTS * 0.4:
            time.sleep(0.05)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        if consumers == 1:
            procs.append(_spawn(group, log))
        writer.join(120)
        deadline = time.monotonic() + 120
        while _applied(group, tenants)[1] < EVENTS:
            alive = [p for p in procs if p.poll() is None]
            assert alive, f"every consumer exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"{_applied(group, tenants)} of {EVENTS} applied:\n" \
                                                 f"{log.read_text()[-3000:]}"
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
    marks, distinct = _applied(group, tenants)
    assert (marks, distinct) == (EVENTS, EVENTS), "every event applied exactly once"
    for fleet in fleets:
        owned = sum(1 for f, _m in written if f == fleet)
        assert portfolio_row(fleet)["miners_total"] == owned, fleet
