"""The consumer loop's offset commits, on the real stack: at most one per commit interval while records keep
coming (the batches in between go with the next), and at once when the loop falls idle."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.integration.pipeline.harness import add_miner, private, run_until
from workers.consumer_loop import ConsumerLoop
from workers.portfolio_consumer import PortfolioHandler

FAST = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}  # the broker's minimum session
WRITES = 4
GAP_S = 0.4  # between writes: a batch each (no batch window) unless capture stalls, far shorter than the idle


class _Watched:
    """The loop's Kafka consumer, noting each offset commit (with the batches done by then) and the offsets of one
    user's records it hands out."""

    def __init__(self, consumer: Any, loop: ConsumerLoop, user_id: str) -> None:
        self._consumer = consumer
        self._loop = loop
        self._user = user_id.encode()
        self.commits: list[tuple[int, dict[tuple[str, int], int]]] = []
        self.read: dict[tuple[str, int], int] = {}

    def _note(self, msgs: list) -> None:
        for m in msgs:
            if m.error() is None and m.key() == self._user:
                key = (m.topic(), m.partition())
                self.read[key] = max(self.read.get(key, -1), m.offset())

    def poll(self, *args, **kwargs):
        msg = self._consumer.poll(*args, **kwargs)
        self._note([msg] if msg is not None else [])
        return msg

    def consume(self, *args, **kwargs):
        msgs = self._consumer.consume(*args, **kwargs)
        self._note(msgs)
        return msgs

    def commit(self, *, offsets, asynchronous: bool):
        self.commits.append((self._loop.stats.batches, {(tp.topic, tp.partition): tp.offset for tp in offsets}))
        return self._consumer.commit(offsets=offsets, asynchronous=asynchronous)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)


def _writes_apart(fleet, loop: ConsumerLoop) -> None:
    deadline = time.monotonic() + 60
    while not loop.owned and time.monotonic() < deadline:
        time.sleep(0.05)
    for _ in range(WRITES):
        add_miner(fleet)
        time.sleep(GAP_S)


def _run(fleet, tag: str, interval: float, idle: float) -> tuple[_Watched, ConsumerLoop]:
    """The writes through a loop of that commit interval whose poll calls it idle after `idle` s of silence; run
    until the idle poll after the last write."""
    handler = private(PortfolioHandler, tag)
    loop = ConsumerLoop(handler, commit_interval=interval, poll_timeout=idle, extra_consumer_config=FAST)
    watched = _Watched(loop.consumer, loop, fleet.user_id)
    loop.consumer = watched
    writer = threading.Thread(target=_writes_apart, args=(fleet, loop), daemon=True)
    writer.start()
    applied_at: list[float] = []

    def settled() -> bool:
        if loop.stats.applied < WRITES:
            return False
        applied_at.append(time.monotonic())
        return time.monotonic() - applied_at[0] >= idle + 1

    run_until(loop, settled)
    writer.join(10)
    return watched, loop


def test_commits_are_spaced_while_records_come_and_made_when_idle(fleet):
    watched, loop = _run(fleet, "spaced", interval=60.0, idle=3.0)  # silence of 3 s: never between the writes
    assert loop.stats.batches >= 2, loop.stats  # else nothing was there to space
    (partition, last), = watched.read.items()
    # The first batch commits (no commit yet); the later ones wait for the interval; the idle poll commits them.
    assert [batches for batches, _ in watched.commits] == [1, loop.stats.batches], watched.commits
    assert watched.commits[-1][1][partition] == last + 1


def test_every_batch_commits_with_no_interval(fleet):
    watched, loop = _run(fleet, "each", interval=0.0, idle=3.0)
    assert loop.stats.batches >= 2, loop.stats
    assert [b for b, _ in watched.commits][:loop.stats.batches] == list(range(1, loop.stats.batches + 1))
