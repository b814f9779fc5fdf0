"""Forecast refresh: rewrite users' forecast_daily rows from today on, from their fleets as they are now.

Maintenance windows in the horizon count as downtime (app.domain.maintenance): one query for all the users'
windows, alongside the fleet query.

Set-based like the portfolio recalculation: one fleet query and one upsert for however many users. The horizon
is fixed (DEFAULT_HORIZON_DAYS from today), so the rows a refresh writes are exactly the user's rows from today
on: an earlier refresh's days are overwritten in place, and days before today stay as history. An upsert, not
a delete and an insert: an update that keeps the key touches no index and fires no foreign-key check, about
half the database's CPU of the rewrite. The one-row forecast_refresh is stamped in the same transaction
(health's forecast_freshness_sec reads it: migrations/0012).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone

from app.adapters.db import columns
from app.adapters.prepared import Prepared
from app.domain.forecast import DEFAULT_HORIZON_DAYS, Forecast, forecast_fleet
from app.domain.maintenance import Window, downtime_hours
from app.domain.mining import DEFAULT_ELECTRICITY_PRICE_USD_KWH
from app.service_layer.portfolio import latest_network, load_fleets, owner_prices
from app.service_layer.unit_of_work import UnitOfWork

_WINDOWS = Prepared(
    "maintenance_windows",
    """SELECT user_id, miner_id::text, starts_at, ends_at FROM maintenance_windows
        WHERE user_id = ANY(CAST(:user_ids AS text[])) AND ends_at > CAST(:start AS timestamptz)
          AND starts_at < CAST(:end AS timestamptz)""",
)
_STAMP = Prepared("stamp_forecast_refresh", """INSERT INTO forecast_refresh (computed_at) VALUES (now())
                                              ON CONFLICT (singleton) DO UPDATE SET computed_at = now()""")
_UPSERT = Prepared(
    "upsert_forecasts",
    """INSERT INTO forecast_daily (tenant_id, user_id, day, btc_mined, revenue_usd, cost_usd, profit_usd,
                                  btc_price_usd, difficulty, computed_at)
       SELECT CAST(:tenant_id AS text), r.*, now()
         FROM unnest(CAST(:user_ids AS text[]), CAST(:days AS date[]), CAST(:btcs AS float8[]),
                     CAST(:revenues AS float8[]), CAST(:costs AS float8[]), CAST(:profits AS float8[]),
                     CAST(:prices AS float8[]), CAST(:difficulties AS float8[])) AS r
       ON CONFLICT (tenant_id, user_id, day) DO UPDATE
          SET btc_mined = EXCLUDED.btc_mined, revenue_usd = EXCLUDED.revenue_usd, cost_usd = EXCLUDED.cost_usd,
              profit_usd = EXCLUDED.profit_usd, btc_price_usd = EXCLUDED.btc_price_usd,
              difficulty = EXCLUDED.difficulty, computed_at = EXCLUDED.computed_at""",
)


def refresh_forecasts(uow: UnitOfWork, user_ids: Sequence[str], today: date | None = None) -> dict[str, Forecast]:
    """Refresh the named users of the unit of work's current tenant; returns their forecasts."""
    if not user_ids:
        return {}
    conn = uow.conn
    start = today or datetime.now(timezone.utc).date()
    network = latest_network(conn)
    prices = owner_prices(conn, user_ids)
    horizon_start = datetime.combine(start, time.min, tzinfo=timezone.utc)
    horizon_end = horizon_start + timedelta(days=DEFAULT_HORIZON_DAYS)
    windows: dict[str, list[Window]] = {}
    for user, miner, starts_at, ends_at in _WINDOWS(
        conn, {"user_ids": list(user_ids), "start": horizon_start, "end": horizon_end}
    ):
        windows.setdefault(user, []).append(Window(miner, starts_at, ends_at))
    in_maintenance = {w.miner_id for ws in windows.values() for w in ws}  # counted one by one: not grouped
    forecasts = {
        user: forecast_fleet(
            fleet, network, start,
            owner_electricity_price_usd_kwh=prices.get(user, DEFAULT_ELECTRICITY_PRICE_USD_KWH),
            downtime=downtime_hours(windows[user]) if user in windows else None,
        )
        for user, fleet in load_fleets(conn, user_ids, apart=in_maintenance).items()
    }
    rows = [(u, d) for u, f in forecasts.items() for d in f.days]
    _UPSERT(
        conn,
        {"tenant_id": uow.tenant_id}
        | columns(
            rows,
            user_ids=lambda r: r[0],
            days=lambda r: r[1].day,
            btcs=lambda r: r[1].btc_mined,
            revenues=lambda r: r[1].revenue_usd,
            costs=lambda r: r[1].cost_usd,
            profits=lambda r: r[1].profit_usd,
            prices=lambda r: r[1].btc_price_usd,
            difficulties=lambda r: r[1].difficulty,
        ),
    )
    _STAMP(conn)
    return forecasts


def refresh_forecast(uow: UnitOfWork, user_id: str, today: date | None = None) -> Forecast:
    return refresh_forecasts(uow, [user_id], today)[user_id]
