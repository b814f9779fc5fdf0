"""Market data: record a network snapshot (POST /api/market/snapshots) and emit market.snapshot_recorded.

The snapshot row, its event and its audit row commit together (run_write). network_latest (migrations/0011)
follows by trigger, so every recalculation from then on prices fleets with it; the fan-out consumers
(workers/fanout.py) then recalculate every user of every tenant and invalidate their caches.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import text

from app.service_layer.errors import Conflict, Unprocessable
from app.service_layer.idempotency import Outcome
from app.service_layer.miners import iso
from app.service_layer.unit_of_work import UnitOfWork
from app.service_layer.writes import Caller, run_write
from generated.events import MarketSnapshotRecorded

MAX_FUTURE = timedelta(minutes=5)  # clocks drift; a snapshot from further ahead is a mistake
SOURCE = "api"
TYPE_DUPLICATE_SNAPSHOT = "urn:hashinsight:problem:duplicate-snapshot"
TYPE_INVALID_TIME = "urn:hashinsight:problem:invalid-time"


def implied_hashrate_ehs(difficulty: float) -> float:
    """The network hashrate a difficulty implies: D x 2^32 hashes per 600 s block, in EH/s."""
    return difficulty * 2**32 / 600 / 1e18


def parse_time(value: str, field: str) -> datetime:
    """An RFC 3339 date-time with a time zone, as an aware UTC datetime; a clear 422 otherwise."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise Unprocessable(f"{field} must be an RFC 3339 date-time with a time zone, got {value!r}",
                            errors=[{"field": field, "message": "needs a time zone, e.g. 2025-01-15T12:00:00Z"}],
                            problem_type=TYPE_INVALID_TIME)
    return parsed.astimezone(timezone.utc)


def record_snapshot(caller: Caller, body: dict[str, Any]) -> Outcome:
    now = datetime.now(timezone.utc)
    ts = parse_time(body["ts"], "ts") if body.get("ts") else now
    if ts > now + MAX_FUTURE:
        raise Unprocessable(f"ts {iso(ts)} is more than 5 minutes in the future",
                            errors=[{"field": "ts", "message": "in the future"}], problem_type=TYPE_INVALID_TIME)
    price = float(body["btc_price_usd"])
    difficulty = float(body["difficulty"])
    reward = float(body["block_reward_btc"])
    implied = implied_hashrate_ehs(difficulty)
    hashrate = float(body.get("network_hashrate_ehs") or (round(implied, 2) if implied >= 1 else implied))

    def work(uow: UnitOfWork) -> Outcome:
        stored = uow.conn.execute(
            text(
                """INSERT INTO network_snapshots (ts, btc_price_usd, difficulty, network_hashrate_ehs,
                                                 block_reward_btc, source)
                   VALUES (:ts, :price, :difficulty, :hashrate, :reward, :source)
                   ON CONFLICT (ts) DO NOTHING
                   RETURNING ts"""
            ),
            {"ts": ts, "price": price, "difficulty": difficulty, "hashrate": hashrate, "reward": reward,
             "source": SOURCE},
        ).scalar_one_or_none()
        if stored is None:
            raise Conflict(f"A network snapshot at {iso(ts)} already exists", problem_type=TYPE_DUPLICATE_SNAPSHOT)
        latest = uow.conn.execute(text("SELECT ts FROM network_latest")).scalar_one_or_none()
        snapshot = {
            "ts": iso(stored), "btc_price_usd": price, "difficulty": difficulty, "block_reward_btc": reward,
            "network_hashrate_ehs": hashrate, "source": SOURCE, "is_latest": latest == stored,
        }
        uow.emit(caller.event(
            "market.snapshot_recorded",
            MarketSnapshotRecorded(ts=snapshot["ts"], btc_price_usd=price, difficulty=difficulty,
                                   block_reward_btc=reward, network_hashrate_ehs=hashrate,
                                   is_latest=snapshot["is_latest"]),
            entity_id=snapshot["ts"],
        ))
        uow.audit(caller.audit("market.snapshot_record", "network_snapshot", snapshot["ts"],
                               {k: snapshot[k] for k in ("btc_price_usd", "difficulty", "block_reward_btc",
                                                         "network_hashrate_ehs", "is_latest")}))
        return Outcome(201, snapshot)

    return run_write(caller, "record_market_snapshot", {}, body, work)
