"""A consumer's batch window, on the real stack: records that reach Kafka within the window after a batch's first
record are applied in that batch; without a window each is applied as soon as it arrives."""

from __future__ import annotations

import threading
import time

from tests.integration.pipeline.harness import add_miner, private, run_until
from workers.consumer_loop import ConsumerLoop
from workers.portfolio_consumer import PortfolioHandler

FAST = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}  # the broker's minimum session
GAP_S = 0.5  # between the two writes: far longer than capture's jitter, far shorter than the window


class _Recording(PortfolioHandler):
    """The portfolio handler, noting which users' events each call of `apply` received, and how many."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, int]] = []

    def apply(self, uow, events):
        self.calls.append({user: len(evs) for user, evs in events.items()})
        return super().apply(uow, events)


def _two_writes_apart(fleet, loop: ConsumerLoop) -> None:
    """Once the loop owns its partitions (so neither record is already waiting when it first polls): one write,
    and another GAP_S later."""
    deadline = time.monotonic() + 60
    while not loop.owned and time.monotonic() < deadline:
        time.sleep(0.05)
    add_miner(fleet)
    time.sleep(GAP_S)
    add_miner(fleet)


def _batches_of(fleet, window: float, tag: str) -> list[int]:
    handler = private(_Recording, tag)
    loop = ConsumerLoop(handler, batch_window=window, extra_consumer_config=FAST)
    writer = threading.Thread(target=_two_writes_apart, args=(fleet, loop), daemon=True)
    writer.start()
    run_until(loop, lambda: sum(c.get(fleet.user_id, 0) for c in handler.calls) >= 2)
    writer.join(10)
    return [c[fleet.user_id] for c in handler.calls if fleet.user_id in c]


def test_records_arriving_within_the_window_are_applied_in_one_batch(fleet):
    assert _batches_of(fleet, 3.0, "window") == [2]


def test_without_a_window_each_record_is_applied_as_it_arrives(fleet):
    assert _batches_of(fleet, 0.0, "nowindow") == [1, 1]

