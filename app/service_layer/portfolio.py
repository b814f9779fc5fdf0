"""recalc_user_portfolio: rebuild a user's derived tables from the fleet and the latest network snapshot."""

from __future__ import annotations

import json

from sqlalchemy import Connection, text

from app.domain.mining import DEFAULT_ELECTRICITY_PRICE_USD_KWH, NetworkState
from app.domain.portfolio import MinerFacts, Portfolio, build_portfolio
from app.service_layer.unit_of_work import UnitOfWork


class NoNetworkSnapshot(LookupError):
    """network_snapshots is empty: nothing to price a fleet with (run `make seed`)."""


# Effective values are resolved here, once: the miner's override, else its model's / its owner's.
_FLEET = text(
    """SELECT m.id::text, m.model_id, mm.name, m.status,
              COALESCE(m.hashrate_ths, mm.hashrate_ths), COALESCE(m.power_w, mm.power_w),
              COALESCE(m.electricity_price_usd_kwh, u.electricity_price_usd_kwh, :default_price),
              m.pool_fee_pct
         FROM user_miners um
         JOIN miners m ON m.tenant_id = um.tenant_id AND m.id = um.miner_id
         JOIN miner_models mm ON mm.id = m.model_id
         JOIN users u ON u.tenant_id = um.tenant_id AND u.id = um.user_id
        WHERE um.user_id = :user_id"""
)


def load_fleet(conn: Connection, user_id: str) -> list[MinerFacts]:
    rows = conn.execute(_FLEET, {"user_id": user_id, "default_price": DEFAULT_ELECTRICITY_PRICE_USD_KWH})
    return [MinerFacts(*row) for row in rows]


_LATEST_SNAPSHOT = """SELECT btc_price_usd, difficulty, block_reward_btc, ts, network_hashrate_ehs
                          FROM network_snapshots {where} ORDER BY ts DESC LIMIT 1"""


def latest_network(conn: Connection) -> NetworkState:
    # The recent window prunes the search to a few daily partitions; the unbounded query is the fallback.
    row = conn.execute(text(_LATEST_SNAPSHOT.format(where="WHERE ts > now() - interval '3 days'"))).first()
    if row is None:
        row = conn.execute(text(_LATEST_SNAPSHOT.format(where=""))).first()
    if row is None:
        raise NoNetworkSnapshot("network_snapshots is empty; seed it with `make seed`")
    return NetworkState(*row)


def recalc_user_portfolio(uow: UnitOfWork, user_id: str, last_event_id: str | None = None) -> Portfolio:
    conn = uow.conn
    portfolio = build_portfolio(load_fleet(conn, user_id), latest_network(conn))
    params = {"tenant_id": uow.tenant_id, "user_id": user_id}
    conn.execute(
        text(
            """INSERT INTO user_portfolio
                 (tenant_id, user_id, miners_total, miners_by_status, active_hashrate_ths, active_power_w,
                  daily_btc, daily_revenue_usd, daily_cost_usd, daily_profit_usd, break_even_usd_kwh,
                  snapshot_ts, updated_at, last_event_id)
               VALUES (:tenant_id, :user_id, :miners_total, CAST(:by_status AS jsonb), :hashrate, :power,
                       :btc, :revenue, :cost, :profit, :break_even, :snapshot_ts, now(), :last_event_id)
               ON CONFLICT (tenant_id, user_id) DO UPDATE SET
                 miners_total = EXCLUDED.miners_total, miners_by_status = EXCLUDED.miners_by_status,
                 active_hashrate_ths = EXCLUDED.active_hashrate_ths, active_power_w = EXCLUDED.active_power_w,
                 daily_btc = EXCLUDED.daily_btc, daily_revenue_usd = EXCLUDED.daily_revenue_usd,
                 daily_cost_usd = EXCLUDED.daily_cost_usd, daily_profit_usd = EXCLUDED.daily_profit_usd,
                 break_even_usd_kwh = EXCLUDED.break_even_usd_kwh, snapshot_ts = EXCLUDED.snapshot_ts,
                 updated_at = now(),
                 last_event_id = COALESCE(EXCLUDED.last_event_id, user_portfolio.last_event_id)"""
        ),
        params
        | {
            "miners_total": portfolio.miners_total,
            "by_status": json.dumps(portfolio.miners_by_status),
            "hashrate": portfolio.active_hashrate_ths,
            "power": portfolio.active_power_w,
            "btc": portfolio.daily_btc,
            "revenue": portfolio.daily_revenue_usd,
            # Power cost only, as the contract defines it; profit is revenue less pool fee less power cost.
            "cost": portfolio.daily_cost_usd,
            "profit": portfolio.daily_profit_usd,
            "break_even": portfolio.break_even_usd_kwh,
            "snapshot_ts": portfolio.network.ts,
            "last_event_id": last_event_id,
        },
    )
    conn.execute(text("DELETE FROM user_analytics WHERE user_id = :user_id"), params)
    if portfolio.by_model:
        conn.execute(
            text(
                """INSERT INTO user_analytics
                     (tenant_id, user_id, model_id, miners, active_miners, hashrate_ths, power_w, daily_btc,
                      daily_revenue_usd, daily_cost_usd, daily_profit_usd, updated_at)
                   VALUES (:tenant_id, :user_id, :model_id, :miners, :active, :hashrate, :power, :btc,
                           :revenue, :cost, :profit, now())"""
            ),
            [
                params
                | {
                    "model_id": m.model_id,
                    "miners": m.miners,
                    "active": m.active_miners,
                    "hashrate": m.hashrate_ths,
                    "power": m.power_w,
                    "btc": m.daily_btc,
                    "revenue": m.daily_revenue_usd,
                    "cost": m.daily_cost_usd,
                    "profit": m.daily_profit_usd,
                }
                for m in portfolio.by_model
            ],
        )
    return portfolio
