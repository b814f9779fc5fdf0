"""A user's fleet, aggregated: the figures of `user_portfolio` (one row) and `user_analytics` (one per model).

Only `active` miners hash and draw power, so only they count towards hashrate, power, BTC, revenue, fee, cost
and profit; every miner counts towards `miners_total`, `miners_by_status` and its model's `miners`.

Sums use math.fsum, which is correctly rounded and so independent of row order: the portfolio consumer and
a replay compute bit-identical figures whatever order the database returns the miners in.

A fleet may arrive as groups of identical miners (`MinerFacts.count`): the economics are computed once per
group, and each sum still takes every miner's value (`repeat(value, count)`), so a grouped fleet gives exactly
the figures of the same fleet miner by miner, at a cost that follows the distinct configurations rather than
the number of miners.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, repeat

from app.domain.miner_status import ALL_STATUSES, is_hashing, parse_status
from app.domain.mining import MinerEconomics, NetworkState, break_even_usd_kwh, miner_economics


@dataclass(frozen=True)
class MinerFacts:
    """One miner as the aggregation needs it, with *effective* values already resolved by the caller:
    hashrate/power are the miner's override else its model's, the price is the miner's else its owner's.

    `count` > 1: this many miners alike in every field below but the id (`miner_id` is then one of them)."""

    miner_id: str
    model_id: str
    model_name: str
    status: str
    hashrate_ths: float
    power_w: float
    electricity_price_usd_kwh: float
    pool_fee_pct: float
    count: int = 1

    def __post_init__(self) -> None:
        # float throughout (see app.domain.mining); a Decimal from a NUMERIC column or JSON is converted here.
        for name in ("hashrate_ths", "power_w", "electricity_price_usd_kwh", "pool_fee_pct"):
            object.__setattr__(self, name, float(getattr(self, name)))
        if self.count < 1:
            raise ValueError(f"a fleet row stands for at least one miner, got count={self.count}")


def every(values: Iterable[tuple[float, int]]) -> Iterator[float]:
    """Each (value, count) as `count` values: what an fsum over a grouped fleet adds up."""
    return chain.from_iterable(repeat(value, count) for value, count in values)


@dataclass(frozen=True)
class ModelBreakdown:
    """One `user_analytics` row. hashrate/power and the daily figures cover the model's active miners."""

    model_id: str
    model_name: str
    miners: int
    active_miners: int
    hashrate_ths: float
    power_w: float
    daily_btc: float
    daily_revenue_usd: float
    daily_pool_fee_usd: float
    daily_cost_usd: float
    daily_profit_usd: float


@dataclass(frozen=True)
class Portfolio:
    """The `user_portfolio` row plus its per-model breakdown (sorted by model_id)."""

    miners_total: int
    miners_by_status: dict[str, int]  # all five statuses, zeros included
    active_hashrate_ths: float
    active_power_w: float
    daily_btc: float
    daily_revenue_usd: float
    daily_pool_fee_usd: float
    daily_cost_usd: float
    daily_profit_usd: float
    break_even_usd_kwh: float | None  # None when no miner is active
    by_model: tuple[ModelBreakdown, ...]
    network: NetworkState


def _sum(economics: list[tuple[MinerEconomics, int]], field: str) -> float:
    return math.fsum(every((getattr(e, field), n) for e, n in economics))


def _breakdown(model_id: str, model_name: str, miners: list[MinerFacts],
               economics: list[tuple[MinerEconomics, int]]) -> ModelBreakdown:
    revenue = _sum(economics, "daily_revenue_usd")
    fee = _sum(economics, "daily_pool_fee_usd")
    cost = _sum(economics, "daily_cost_usd")
    return ModelBreakdown(
        model_id=model_id,
        model_name=model_name,
        miners=sum(m.count for m in miners),
        active_miners=sum(n for _, n in economics),
        hashrate_ths=_sum(economics, "hashrate_ths"),
        power_w=_sum(economics, "power_w"),
        daily_btc=_sum(economics, "daily_btc"),
        daily_revenue_usd=revenue,
        daily_pool_fee_usd=fee,
        daily_cost_usd=cost,
        daily_profit_usd=revenue - fee - cost,  # same identity as the portfolio total (see build_portfolio)
    )


def build_portfolio(miners: Iterable[MinerFacts], network: NetworkState) -> Portfolio:
    fleet = list(miners)
    by_status = {status.value: 0 for status in ALL_STATUSES}
    per_model: dict[str, list[MinerFacts]] = {}
    active: dict[str, list[tuple[MinerEconomics, int]]] = {}
    for miner in fleet:
        status = parse_status(miner.status)  # an unknown status is a data error: fail, don't miscount
        by_status[status.value] += miner.count
        per_model.setdefault(miner.model_id, []).append(miner)
        if is_hashing(status):
            active.setdefault(miner.model_id, []).append(
                (miner_economics(miner.hashrate_ths, miner.power_w, miner.electricity_price_usd_kwh,
                                 miner.pool_fee_pct, network), miner.count)
            )

    by_model = tuple(
        _breakdown(model_id, per_model[model_id][0].model_name, per_model[model_id], active.get(model_id, []))
        for model_id in sorted(per_model)
    )
    everything = [e for economics in active.values() for e in economics]
    revenue = _sum(everything, "daily_revenue_usd")
    fee = _sum(everything, "daily_pool_fee_usd")
    power_w = _sum(everything, "power_w")
    cost = _sum(everything, "daily_cost_usd")
    return Portfolio(
        miners_total=sum(m.count for m in fleet),
        miners_by_status=by_status,
        active_hashrate_ths=_sum(everything, "hashrate_ths"),
        active_power_w=power_w,
        daily_btc=_sum(everything, "daily_btc"),
        daily_revenue_usd=revenue,
        daily_pool_fee_usd=fee,
        daily_cost_usd=cost,
        # fsum of per-miner profits equals revenue - fee - cost up to one rounding; computing it from the
        # totals keeps the identity exact for readers who check it.
        daily_profit_usd=revenue - fee - cost,
        # Weighted break-even: fleet profit at one uniform price p is sum(revenue_i - fee_i) - p x 24 x sum(kW_i),
        # so p = sum(revenue_i - fee_i) / (24 x sum(kW_i)), i.e. the per-miner break-evens weighted by power.
        break_even_usd_kwh=break_even_usd_kwh(revenue, fee, power_w) if everything else None,
        by_model=by_model,
        network=network,
    )

