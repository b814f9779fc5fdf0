"""Replay of a time window and DLQ redrive, on the real stack."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

from tests.integration.pipeline.harness import add_miner, inbox_count, portfolio_row, private, run_until
from tools import db
from tools.redrive import redrive
from tools.replay import replay
from workers.consumer_loop import ConsumerLoop
from workers.intel_consumer import IntelHandler
from workers.portfolio_consumer import PortfolioHandler


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _inbox_times(consumer: str, event_ids: list[str]) -> dict[str, datetime]:
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT event_id, processed_at FROM consumer_inbox WHERE consumer_name = %s "
                    "AND event_id = ANY(%s)", (consumer, event_ids))
        return dict(cur.fetchall())


def _event_ids(tenant_id: str) -> list[str]:
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM event_outbox WHERE tenant_id = %s ORDER BY created_at", (tenant_id,))
        return [r[0] for r in cur.fetchall()]


def test_replaying_a_window_reprocesses_exactly_that_window(fleet):
    handler = private(PortfolioHandler, "replay")
    add_miner(fleet)  # before the window
    time.sleep(1.2)
    start = _now()
    add_miner(fleet)
    add_miner(fleet)  # the window holds these two
    time.sleep(1.2)
    end = _now()
    time.sleep(0.3)
    add_miner(fleet)  # after the window
    before, first, second, after = _event_ids(fleet.tenant_id)

    live = ConsumerLoop(handler)
    run_until(live, lambda: inbox_count(handler.name, [before, first, second, after]) == 4)
    applied_at = _inbox_times(handler.name, [before, first, second, after])

    dry = replay(handler, ["events.miner"], start, end, dry_run=True, bypass_inbox=False)
    assert dry["miner.added"] >= 2  # other tests' events may share the window; ours are two of them

    honoured = replay(handler, ["events.miner"], start, end, dry_run=False, bypass_inbox=False)
    assert honoured["applied"] == 0 and honoured["skipped_as_applied"] >= 2
    assert _inbox_times(handler.name, [before, first, second, after]) == applied_at

    bypassed = replay(handler, ["events.miner"], start, end, dry_run=False, bypass_inbox=True)
    assert bypassed["applied"] >= 2
    again = _inbox_times(handler.name, [before, first, second, after])
    assert again[first] > applied_at[first] and again[second] > applied_at[second]
    assert again[before] == applied_at[before] and again[after] == applied_at[after]
    assert portfolio_row(fleet)["miners_total"] == 4


class _BrokenPortfolio(PortfolioHandler):
    """A handler with a bug: every miner event fails for good."""

    def apply(self, uow, events):
        raise ValueError("bug in the handler")


def test_dead_letters_are_redriven_to_their_topic_after_a_fix(fleet):
    broken = private(_BrokenPortfolio, "redrive")
    add_miner(fleet)
    (event_id,) = _event_ids(fleet.tenant_id)
    loop = ConsumerLoop(broken, backoff_base=0.01)
    run_until(loop, lambda: loop.stats.dead_lettered >= 1)
    assert "bug in the handler" in loop.stats.dead_letter_reasons[0]
    assert inbox_count(broken.name, [event_id]) == 0  # the failed transaction left no mark

    group = f"test.redrive.{uuid.uuid4().hex[:8]}"
    assert redrive(broken.name, dry_run=True, group=group)["would redrive"] == 1
    moved = redrive(broken.name, dry_run=False, group=group)
    assert moved["redriven to events.miner"] == 1
    assert not redrive(broken.name, dry_run=False, group=group).get("redriven to events.miner")  # once only

    fixed = PortfolioHandler()
    fixed.name = broken.name  # the same consumer, fixed: its group resumes where the broken one stopped
    loop = ConsumerLoop(fixed)
    run_until(loop, lambda: inbox_count(fixed.name, [event_id]) == 1)
    assert portfolio_row(fleet)["miners_total"] == 1


def test_intel_consumer_refreshes_the_forecast(fleet):
    handler = private(IntelHandler, "intel")
    add_miner(fleet)
    loop = ConsumerLoop(handler)
    run_until(loop, lambda: loop.stats.applied >= 1)
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), min(day), sum(btc_mined) FROM forecast_daily WHERE tenant_id = %s",
                    (fleet.tenant_id,))
        days, first_day, btc = cur.fetchone()
    assert days == 30
    assert first_day == _now().date()
    assert btc > 0
