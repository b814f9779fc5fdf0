"""Daily profitability forecast for a user's fleet: the rows of `forecast_daily`.

Assumptions (returned with every forecast, so a reader sees what the numbers rest on):

- The fleet stays as it is today: the miners active now stay active with today's hashrate, power,
  electricity price and pool fee for the whole horizon; nothing is added, retired or repaired.
- Difficulty compounds daily: difficulty on day i (0 = the start day) is D0 x (1 + g/100)^i with
  g = `difficulty_growth_pct_per_day`, default 0.1 %/day (~44 % a year, roughly the recent trend).
- BTC price is flat unless told otherwise: price on day i is P0 x (1 + p/100)^i with
  p = `btc_price_growth_pct_per_day`, default 0; P0 is the snapshot's price unless `btc_price_usd` is given.
- Block reward stays at the snapshot's value (a halving inside the horizon is not modelled).
- Power cost is constant per day (power x 24 h x price), so it does not depend on difficulty or price.
- Scheduled maintenance is downtime: for the hours of a miner's maintenance windows it earns nothing and draws
  no power (`downtime`: hours per miner per day, app.domain.maintenance.downtime_hours).

Day 0 equals the portfolio's daily figures at the same NetworkState.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from app.domain.maintenance import uptime_fraction
from app.domain.miner_status import is_hashing
from app.domain.mining import (
    DEFAULT_ELECTRICITY_PRICE_USD_KWH,
    DEFAULT_POOL_FEE_PCT,
    NetworkState,
    daily_btc,
    daily_power_cost_usd,
    pool_fee_usd,
)
from app.domain.portfolio import MinerFacts, every

DEFAULT_HORIZON_DAYS = 30
MAX_HORIZON_DAYS = 365
DEFAULT_DIFFICULTY_GROWTH_PCT_PER_DAY = 0.1
DEFAULT_BTC_PRICE_GROWTH_PCT_PER_DAY = 0.0


@dataclass(frozen=True)
class ForecastAssumptions:
    """What the forecast assumed; the same fields as the API's ForecastAssumptions schema."""

    horizon_days: int
    btc_price_usd: float  # starting price (day 0)
    btc_price_growth_pct_per_day: float
    difficulty: float  # starting difficulty (day 0)
    difficulty_growth_pct_per_day: float
    block_reward_btc: float
    electricity_price_usd_kwh: float  # the owner's default price (miners may override it)
    pool_fee_pct: float  # effective fee of the active fleet: hashrate-weighted mean of the miners' fees


@dataclass(frozen=True)
class ForecastDay:
    """One `forecast_daily` row. profit_usd = revenue_usd - pool fee - cost_usd."""

    day: date
    btc_mined: float
    revenue_usd: float
    cost_usd: float
    profit_usd: float
    btc_price_usd: float
    difficulty: float


@dataclass(frozen=True)
class ForecastTotals:
    btc_mined: float
    revenue_usd: float
    cost_usd: float
    profit_usd: float


@dataclass(frozen=True)
class Forecast:
    assumptions: ForecastAssumptions
    days: tuple[ForecastDay, ...]
    totals: ForecastTotals


def forecast_fleet(
    miners: Iterable[MinerFacts],
    network: NetworkState,
    start_day: date,
    *,
    days: int = DEFAULT_HORIZON_DAYS,
    difficulty_growth_pct_per_day: float = DEFAULT_DIFFICULTY_GROWTH_PCT_PER_DAY,
    btc_price_usd: float | None = None,
    btc_price_growth_pct_per_day: float = DEFAULT_BTC_PRICE_GROWTH_PCT_PER_DAY,
    owner_electricity_price_usd_kwh: float = DEFAULT_ELECTRICITY_PRICE_USD_KWH,
    downtime: Mapping[str, Mapping[date, float]] | None = None,
) -> Forecast:
    """Forecast `days` days from `start_day` (the domain has no clock: the caller passes today, UTC)."""
    if not 1 <= days <= MAX_HORIZON_DAYS:
        raise ValueError(f"days must be within 1..{MAX_HORIZON_DAYS}, got {days}")
    if difficulty_growth_pct_per_day <= -100 or btc_price_growth_pct_per_day <= -100:
        raise ValueError("a daily growth rate must be above -100 %")
    start_price = network.btc_price_usd if btc_price_usd is None else btc_price_usd
    if start_price < 0:
        raise ValueError("btc_price_usd must be >= 0")

    active = [m for m in miners if is_hashing(m.status)]
    # Revenue is linear in hashrate and the fee linear in revenue, so the fleet collapses to three numbers:
    # total hashrate, the hashrate-weighted fee and the (constant) power cost. That makes a year-long
    # forecast of a 10,000-miner fleet 365 steps, not 3.65 million.
    # A grouped fleet (MinerFacts.count) adds each miner's value all the same: see app.domain.portfolio.every.
    hashrate_ths = math.fsum(every((m.hashrate_ths, m.count) for m in active))
    fee_pct = (
        math.fsum(every((m.hashrate_ths * m.pool_fee_pct, m.count) for m in active)) / hashrate_ths
        if hashrate_ths > 0
        else DEFAULT_POOL_FEE_PCT
    )
    cost_usd = math.fsum(every((daily_power_cost_usd(m.power_w, m.electricity_price_usd_kwh), m.count)
                               for m in active))
    # Only miners with a window in the horizon change a day's figures: the rest stay three numbers.
    down = [m for m in active if downtime and downtime.get(m.miner_id)]
    grouped = [m.miner_id for m in down if m.count > 1]
    if grouped:
        raise ValueError(f"miners with downtime must stand alone in the fleet, not in a group: {grouped}")

    rows: list[ForecastDay] = []
    for i in range(days):
        day = start_day + timedelta(days=i)
        difficulty = network.difficulty * (1 + difficulty_growth_pct_per_day / 100) ** i
        price = start_price * (1 + btc_price_growth_pct_per_day / 100) ** i
        day_network = NetworkState(price, difficulty, network.block_reward_btc, network.ts)
        day_hashrate, day_cost = hashrate_ths, cost_usd
        for m in down:
            lost = 1.0 - uptime_fraction(downtime[m.miner_id], day)  # type: ignore[index]
            if lost:
                day_hashrate -= m.hashrate_ths * lost
                day_cost -= daily_power_cost_usd(m.power_w, m.electricity_price_usd_kwh) * lost
        btc = daily_btc(max(0.0, day_hashrate), day_network)
        revenue = btc * price
        fee = pool_fee_usd(revenue, fee_pct)
        cost_usd_day = max(0.0, day_cost)
        rows.append(ForecastDay(
            day=day,
            btc_mined=btc,
            revenue_usd=revenue,
            cost_usd=cost_usd_day,
            profit_usd=revenue - fee - cost_usd_day,
            btc_price_usd=price,
            difficulty=difficulty,
        ))

    return Forecast(
        assumptions=ForecastAssumptions(
            horizon_days=days,
            btc_price_usd=start_price,
            btc_price_growth_pct_per_day=btc_price_growth_pct_per_day,
            difficulty=network.difficulty,
            difficulty_growth_pct_per_day=difficulty_growth_pct_per_day,
            block_reward_btc=network.block_reward_btc,
            electricity_price_usd_kwh=owner_electricity_price_usd_kwh,
            pool_fee_pct=fee_pct,
        ),
        days=tuple(rows),
        totals=ForecastTotals(
            btc_mined=math.fsum(r.btc_mined for r in rows),
            revenue_usd=math.fsum(r.revenue_usd for r in rows),
            cost_usd=math.fsum(r.cost_usd for r in rows),
            profit_usd=math.fsum(r.profit_usd for r in rows),
        ),
    )
