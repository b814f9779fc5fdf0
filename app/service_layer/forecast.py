"""refresh_forecast: rewrite a user's forecast_daily rows from today on, from the fleet as it is now."""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import text

from app.domain.forecast import Forecast, forecast_fleet
from app.domain.mining import DEFAULT_ELECTRICITY_PRICE_USD_KWH
from app.service_layer.portfolio import latest_network, load_fleet
from app.service_layer.unit_of_work import UnitOfWork


def refresh_forecast(uow: UnitOfWork, user_id: str, today: date | None = None) -> Forecast:
    conn = uow.conn
    start = today or datetime.now(timezone.utc).date()
    price = conn.execute(
        text("SELECT electricity_price_usd_kwh FROM users WHERE id = :u"), {"u": user_id}
    ).scalar_one_or_none()
    forecast = forecast_fleet(
        load_fleet(conn, user_id),
        latest_network(conn),
        start,
        owner_electricity_price_usd_kwh=price if price is not None else DEFAULT_ELECTRICITY_PRICE_USD_KWH,
    )
    params = {"tenant_id": uow.tenant_id, "user_id": user_id}
    # Bounded by day so only the horizon's daily partitions are touched.
    conn.execute(
        text("DELETE FROM forecast_daily WHERE user_id = :user_id AND day >= :start"), params | {"start": start}
    )
    conn.execute(
        text(
            """INSERT INTO forecast_daily (tenant_id, user_id, day, btc_mined, revenue_usd, cost_usd, profit_usd,
                                           btc_price_usd, difficulty, computed_at)
               VALUES (:tenant_id, :user_id, :day, :btc, :revenue, :cost, :profit, :price, :difficulty, now())"""
        ),
        [
            params
            | {
                "day": d.day,
                "btc": d.btc_mined,
                "revenue": d.revenue_usd,
                "cost": d.cost_usd,
                "profit": d.profit_usd,
                "price": d.btc_price_usd,
                "difficulty": d.difficulty,
            }
            for d in forecast.days
        ],
    )
    return forecast
