"""Mining math for one miner (or any hashrate/power pair), exactly as docs/domain.md states it.

    daily BTC      = hashrate (H/s) x 86,400 x block reward / (difficulty x 2^32)
    revenue        = daily BTC x BTC price
    power cost     = power (kW) x 24 h x electricity price
    pool fee       = revenue x fee %
    profit         = revenue - pool fee - power cost
    break-even     = (revenue - pool fee) / (kW x 24)        (USD/kWh at which profit is zero)

Numbers are `float` throughout, on purpose: the tables that store these figures are `double precision`
(so the database hands Python floats), the inputs (difficulty, BTC price) are estimates with far fewer
significant digits than a double's ~15, and the results are estimates too. Decimal would add conversions at
every boundary without making an estimate more true. Nothing here rounds: rounding (8 dp for BTC, 4 dp for
USD) is presentation and belongs at the edge, after aggregation, so sums are not sums of rounded parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

SECONDS_PER_DAY = 86_400
HOURS_PER_DAY = 24
HASHES_PER_TERAHASH = 1e12
# On average one block needs difficulty x 2^32 hashes: the network target is 2^224 / difficulty out of 2^256.
HASHES_PER_DIFFICULTY = 2**32
DEFAULT_POOL_FEE_PCT = 2.0
DEFAULT_ELECTRICITY_PRICE_USD_KWH = 0.07
BTC_DECIMALS = 8
USD_DECIMALS = 4


@dataclass(frozen=True)
class NetworkState:
    """The network_snapshots row the figures are computed with (global market data, no tenant)."""

    btc_price_usd: float
    difficulty: float
    block_reward_btc: float
    ts: datetime | None = None
    network_hashrate_ehs: float | None = None

    def __post_init__(self) -> None:
        # Coerce once at the boundary (a NUMERIC column or a JSON Decimal would otherwise meet a float later).
        for name in ("btc_price_usd", "difficulty", "block_reward_btc"):
            object.__setattr__(self, name, float(getattr(self, name)))
        if self.network_hashrate_ehs is not None:
            object.__setattr__(self, "network_hashrate_ehs", float(self.network_hashrate_ehs))
        # difficulty is a divisor; a zero would be a division error deep inside an aggregation.
        if not self.difficulty > 0:
            raise ValueError(f"difficulty must be > 0, got {self.difficulty!r}")
        if self.btc_price_usd < 0 or self.block_reward_btc < 0:
            raise ValueError("btc_price_usd and block_reward_btc must be >= 0")


@dataclass(frozen=True)
class MinerEconomics:
    """One day of one miner (or one aggregated hashrate/power pair) at one NetworkState."""

    hashrate_ths: float
    power_w: float
    electricity_price_usd_kwh: float
    pool_fee_pct: float
    daily_btc: float
    daily_revenue_usd: float
    daily_pool_fee_usd: float
    daily_cost_usd: float
    daily_profit_usd: float
    break_even_usd_kwh: float | None  # None when the miner draws no power (nothing to break even against)


def daily_btc(hashrate_ths: float, network: NetworkState) -> float:
    hashes_per_second = hashrate_ths * HASHES_PER_TERAHASH
    return (
        hashes_per_second * SECONDS_PER_DAY * network.block_reward_btc
        / (network.difficulty * HASHES_PER_DIFFICULTY)
    )


def daily_power_cost_usd(power_w: float, electricity_price_usd_kwh: float) -> float:
    return power_w / 1000 * HOURS_PER_DAY * electricity_price_usd_kwh


def pool_fee_usd(revenue_usd: float, pool_fee_pct: float) -> float:
    return revenue_usd * pool_fee_pct / 100


def break_even_usd_kwh(revenue_usd: float, pool_fee: float, power_w: float) -> float | None:
    """The electricity price at which profit is zero; None when there is no power draw."""
    kwh_per_day = power_w / 1000 * HOURS_PER_DAY
    if kwh_per_day <= 0:
        return None
    return (revenue_usd - pool_fee) / kwh_per_day


def miner_economics(
    hashrate_ths: float,
    power_w: float,
    electricity_price_usd_kwh: float,
    pool_fee_pct: float,
    network: NetworkState,
) -> MinerEconomics:
    btc = daily_btc(hashrate_ths, network)
    revenue = btc * network.btc_price_usd
    fee = pool_fee_usd(revenue, pool_fee_pct)
    cost = daily_power_cost_usd(power_w, electricity_price_usd_kwh)
    return MinerEconomics(
        hashrate_ths=hashrate_ths,
        power_w=power_w,
        electricity_price_usd_kwh=electricity_price_usd_kwh,
        pool_fee_pct=pool_fee_pct,
        daily_btc=btc,
        daily_revenue_usd=revenue,
        daily_pool_fee_usd=fee,
        daily_cost_usd=cost,
        daily_profit_usd=revenue - fee - cost,
        break_even_usd_kwh=break_even_usd_kwh(revenue, fee, power_w),
    )


def round_btc(value: float) -> float:
    """Presentation rounding for BTC amounts (satoshi precision)."""
    return round(value, BTC_DECIMALS)


def round_usd(value: float) -> float:
    """Presentation rounding for USD amounts and USD/kWh prices."""
    return round(value, USD_DECIMALS)
