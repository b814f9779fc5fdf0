"""Portfolio recalculation: rebuild users' derived tables from their fleets and the latest network snapshot.

Set-based: `recalc_portfolios(uow, user_ids)` reads every named fleet in one query and writes every portfolio
row, and every per-model row, in one statement each, whether it recalculates one user or a thousand. The
consumer loop hands it a batch's users at once; a market-data fan-out hands it a tenant's users in chunks.
The figures come from the same domain function as before (build_portfolio), so one user recalculated alone
and in a batch gets bit-identical rows.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from app.adapters.db import columns
from app.adapters.prepared import Prepared
from app.domain.mining import DEFAULT_ELECTRICITY_PRICE_USD_KWH, NetworkState
from app.domain.portfolio import MinerFacts, Portfolio, build_portfolio
from app.service_layer.unit_of_work import UnitOfWork


class NoNetworkSnapshot(LookupError):
    """network_snapshots is empty: nothing to price a fleet with (run `make seed`)."""


# Effective values are resolved here, once: the miner's override, else its model's / its owner's. Driven from
# user_miners by its primary key (tenant from RLS, then user), so the cost follows the fleets asked for. Miners
# alike in every figure come back as one row with their count (app.domain.portfolio.MinerFacts.count): a fleet of
# 10,000 miners of three models is a handful of rows to build in Python. The miners named in `apart` (those with
# maintenance windows, which the forecast treats one by one) always get a row of their own.
_FLEETS = Prepared(
    "fleets_grouped",
    """SELECT um.user_id, min(m.id::text), m.model_id, mm.name, m.status,
              COALESCE(m.hashrate_ths, mm.hashrate_ths), COALESCE(m.power_w, mm.power_w),
              COALESCE(m.electricity_price_usd_kwh, u.electricity_price_usd_kwh, CAST(:default_price AS float8)),
              m.pool_fee_pct, CAST(count(*) AS integer)
         FROM user_miners um
         JOIN miners m ON m.tenant_id = um.tenant_id AND m.id = um.miner_id
         JOIN miner_models mm ON mm.id = m.model_id
         JOIN users u ON u.tenant_id = um.tenant_id AND u.id = um.user_id
        WHERE um.user_id = ANY(CAST(:user_ids AS text[]))
        GROUP BY 1, 3, 4, 5, 6, 7, 8, 9,
                 CASE WHEN m.id::text = ANY(CAST(:apart AS text[])) THEN m.id END""",
)


def load_fleets(conn: Connection, user_ids: Sequence[str],
                apart: Collection[str] = ()) -> dict[str, list[MinerFacts]]:
    """Every named user's fleet (an empty list for a user without miners), as the current tenant sees it, with
    identical miners grouped; a miner whose id is in `apart` stands alone."""
    fleets: dict[str, list[MinerFacts]] = {u: [] for u in user_ids}
    rows = _FLEETS(conn, {"user_ids": list(user_ids), "default_price": DEFAULT_ELECTRICITY_PRICE_USD_KWH,
                          "apart": list(apart)})
    for user_id, *facts in rows:
        fleets[user_id].append(MinerFacts(*facts))
    return fleets


_OWNER_PRICES = Prepared("owner_prices", "SELECT id, electricity_price_usd_kwh FROM users "
                                          "WHERE id = ANY(CAST(:user_ids AS text[]))")


def owner_prices(conn: Connection, user_ids: Sequence[str]) -> dict[str, float]:
    """Each named user's own electricity price, the default where the user has none."""
    prices = dict(_OWNER_PRICES(conn, {"user_ids": list(user_ids)}).all())
    return {u: float(p) if p is not None else DEFAULT_ELECTRICITY_PRICE_USD_KWH for u, p in prices.items()}


def load_fleet(conn: Connection, user_id: str) -> list[MinerFacts]:
    return load_fleets(conn, [user_id])[user_id]


_LATEST = Prepared("network_latest",
                   "SELECT btc_price_usd, difficulty, block_reward_btc, ts, network_hashrate_ehs FROM network_latest")


def latest_network(conn: Connection) -> NetworkState:
    """The newest network snapshot: a primary-key read of network_latest (migrations/0011)."""
    row = _LATEST(conn).first()
    if row is None:
        raise NoNetworkSnapshot("network_snapshots is empty; seed it with `make seed`")
    return NetworkState(*row)


# One statement per table, whatever the number of users: the rows travel as parallel arrays.
_UPSERT_PORTFOLIOS = Prepared(
    "upsert_portfolios",
    """INSERT INTO user_portfolio
         (tenant_id, user_id, miners_total, miners_by_status, active_hashrate_ths, active_power_w,
          daily_btc, daily_revenue_usd, daily_cost_usd, daily_profit_usd, break_even_usd_kwh,
          snapshot_ts, updated_at, last_event_id)
       SELECT CAST(:tenant_id AS text), r.user_id, r.total, r.by_status::jsonb, r.hashrate, r.power, r.btc,
              r.revenue, r.cost, r.profit, r.break_even, CAST(:snapshot_ts AS timestamptz), now(), r.last_event_id
         FROM unnest(CAST(:user_ids AS text[]), CAST(:totals AS integer[]), CAST(:by_status AS text[]),
                     CAST(:hashrates AS float8[]), CAST(:powers AS float8[]), CAST(:btcs AS float8[]),
                     CAST(:revenues AS float8[]), CAST(:costs AS float8[]), CAST(:profits AS float8[]),
                     CAST(:break_evens AS float8[]), CAST(:last_event_ids AS text[]))
              AS r (user_id, total, by_status, hashrate, power, btc, revenue, cost, profit, break_even,
                    last_event_id)
       ON CONFLICT (tenant_id, user_id) DO UPDATE SET
         miners_total = EXCLUDED.miners_total, miners_by_status = EXCLUDED.miners_by_status,
         active_hashrate_ths = EXCLUDED.active_hashrate_ths, active_power_w = EXCLUDED.active_power_w,
         daily_btc = EXCLUDED.daily_btc, daily_revenue_usd = EXCLUDED.daily_revenue_usd,
         daily_cost_usd = EXCLUDED.daily_cost_usd, daily_profit_usd = EXCLUDED.daily_profit_usd,
         break_even_usd_kwh = EXCLUDED.break_even_usd_kwh, snapshot_ts = EXCLUDED.snapshot_ts,
         updated_at = now(),
         last_event_id = COALESCE(EXCLUDED.last_event_id, user_portfolio.last_event_id)
       RETURNING user_id, updated_at, last_event_id""",
)
_DELETE_ANALYTICS = Prepared("delete_analytics",
                             "DELETE FROM user_analytics WHERE user_id = ANY(CAST(:user_ids AS text[]))")
_INSERT_ANALYTICS = Prepared(
    "insert_analytics",
    """INSERT INTO user_analytics
         (tenant_id, user_id, model_id, miners, active_miners, hashrate_ths, power_w, daily_btc,
          daily_revenue_usd, daily_cost_usd, daily_profit_usd, updated_at)
       SELECT CAST(:tenant_id AS text), r.*, now()
         FROM unnest(CAST(:user_ids AS text[]), CAST(:model_ids AS text[]), CAST(:miners AS integer[]),
                     CAST(:active AS integer[]), CAST(:hashrates AS float8[]), CAST(:powers AS float8[]),
                     CAST(:btcs AS float8[]), CAST(:revenues AS float8[]), CAST(:costs AS float8[]),
                     CAST(:profits AS float8[])) AS r""",
)


@dataclass(frozen=True)
class Written:
    """A recalculated portfolio as its transaction wrote it: what GET /api/portfolio reads back once it commits
    (app.service_layer.read_models.portfolio_entry builds that document from it)."""

    portfolio: Portfolio
    updated_at: datetime
    last_event_id: str | None
    owner_price_usd_kwh: float


def recalc_portfolios(
    uow: UnitOfWork, user_ids: Sequence[str], last_event_ids: Mapping[str, str | None] | None = None
) -> dict[str, Portfolio]:
    """Recalculate the named users of the unit of work's current tenant; returns their portfolios."""
    return _recalc(uow, user_ids, last_event_ids)[0]


def recalc_portfolios_written(
    uow: UnitOfWork, user_ids: Sequence[str], last_event_ids: Mapping[str, str | None] | None = None
) -> dict[str, Written]:
    """recalc_portfolios, returning each portfolio with the rest of what its page shows (row stamps, price)."""
    portfolios, stamps = _recalc(uow, user_ids, last_event_ids)
    prices = owner_prices(uow.conn, list(portfolios))
    return {u: Written(p, *stamps[u], prices.get(u, DEFAULT_ELECTRICITY_PRICE_USD_KWH))
            for u, p in portfolios.items()}


def _recalc(
    uow: UnitOfWork, user_ids: Sequence[str], last_event_ids: Mapping[str, str | None] | None
) -> tuple[dict[str, Portfolio], dict[str, tuple[datetime, str | None]]]:
    if not user_ids:
        return {}, {}
    conn = uow.conn
    network = latest_network(conn)
    portfolios = {user: build_portfolio(fleet, network) for user, fleet in load_fleets(conn, user_ids).items()}
    users = list(portfolios)
    last = last_event_ids or {}
    stamped = _UPSERT_PORTFOLIOS(
        conn,
        {"tenant_id": uow.tenant_id, "snapshot_ts": network.ts}
        | columns(
            [(u, portfolios[u]) for u in users],
            user_ids=lambda r: r[0],
            totals=lambda r: r[1].miners_total,
            by_status=lambda r: json.dumps(r[1].miners_by_status),
            hashrates=lambda r: r[1].active_hashrate_ths,
            powers=lambda r: r[1].active_power_w,
            btcs=lambda r: r[1].daily_btc,
            revenues=lambda r: r[1].daily_revenue_usd,
            # Power cost only, as the contract defines it; profit is revenue less pool fee less power cost.
            costs=lambda r: r[1].daily_cost_usd,
            profits=lambda r: r[1].daily_profit_usd,
            break_evens=lambda r: r[1].break_even_usd_kwh,
            last_event_ids=lambda r: last.get(r[0]),
        ),
    )
    stamps = {user: (updated_at, last_event_id) for user, updated_at, last_event_id in stamped}
    _DELETE_ANALYTICS(conn, {"user_ids": users})
    rows = [(u, m) for u in users for m in portfolios[u].by_model]
    if rows:
        _INSERT_ANALYTICS(
            conn,
            {"tenant_id": uow.tenant_id}
            | columns(
                rows,
                user_ids=lambda r: r[0],
                model_ids=lambda r: r[1].model_id,
                miners=lambda r: r[1].miners,
                active=lambda r: r[1].active_miners,
                hashrates=lambda r: r[1].hashrate_ths,
                powers=lambda r: r[1].power_w,
                btcs=lambda r: r[1].daily_btc,
                revenues=lambda r: r[1].daily_revenue_usd,
                costs=lambda r: r[1].daily_cost_usd,
                profits=lambda r: r[1].daily_profit_usd,
            ),
        )
    return portfolios, stamps


def recalc_user_portfolio(uow: UnitOfWork, user_id: str, last_event_id: str | None = None) -> Portfolio:
    return recalc_portfolios(uow, [user_id], {user_id: last_event_id})[user_id]
