"""Ground truth after a load or fault run: the database says what was applied, and whether it is right."""

from __future__ import annotations

from collections import Counter
from typing import Any

from app.domain.mining import DEFAULT_ELECTRICITY_PRICE_USD_KWH, NetworkState
from app.domain.portfolio import MinerFacts, build_portfolio

CONSUMERS = ("hashinsight.portfolio", "hashinsight.intel")


def inbox_marks(cur: Any, tenants: list[str], consumer: str) -> Counter[str]:
    """event id -> how many inbox marks `consumer` holds for it (the primary key makes that 0 or 1)."""
    cur.execute("SELECT event_id, count(*) FROM consumer_inbox WHERE consumer_name = %s AND tenant_id = ANY(%s) "
                "GROUP BY event_id", (consumer, tenants))
    return Counter(dict(cur.fetchall()))


def portfolio_mismatches(cur: Any, tenants: list[str]) -> list[str]:
    """Users whose user_portfolio row differs from a recomputation from their fleet (same snapshot)."""
    cur.execute(
        """SELECT um.tenant_id, um.user_id, m.id::text, m.model_id, mm.name, m.status,
                  COALESCE(m.hashrate_ths, mm.hashrate_ths), COALESCE(m.power_w, mm.power_w),
                  COALESCE(m.electricity_price_usd_kwh, u.electricity_price_usd_kwh, %s), m.pool_fee_pct
             FROM user_miners um JOIN miners m ON m.tenant_id = um.tenant_id AND m.id = um.miner_id
             JOIN miner_models mm ON mm.id = m.model_id
             JOIN users u ON u.tenant_id = um.tenant_id AND u.id = um.user_id
            WHERE um.tenant_id = ANY(%s)""",
        (DEFAULT_ELECTRICITY_PRICE_USD_KWH, tenants),
    )
    fleets: dict[tuple[str, str], list[MinerFacts]] = {}
    for t, u, *facts in cur.fetchall():
        fleets.setdefault((t, u), []).append(MinerFacts(*facts))
    cur.execute(
        """SELECT p.tenant_id, p.user_id, p.miners_total, p.miners_by_status, p.daily_btc,
                  s.btc_price_usd, s.difficulty, s.block_reward_btc, s.ts, s.network_hashrate_ehs
             FROM user_portfolio p JOIN network_snapshots s ON s.ts = p.snapshot_ts
            WHERE p.tenant_id = ANY(%s)""",
        (tenants,),
    )
    rows = {(r[0], r[1]): r for r in cur.fetchall()}
    bad = []
    for key, fleet in fleets.items():
        row = rows.get(key)
        if row is None:
            bad.append(f"{key[1]}: no portfolio row")
            continue
        expected = build_portfolio(fleet, NetworkState(*row[5:]))
        if (row[2], row[3]) != (expected.miners_total, expected.miners_by_status) or \
                abs(row[4] - expected.daily_btc) > 1e-12 * max(1.0, abs(expected.daily_btc)):
            bad.append(f"{key[1]}: stored {row[2]} miners {row[3]}, recomputed {expected.miners_total} "
                       f"{expected.miners_by_status}")
    return bad
