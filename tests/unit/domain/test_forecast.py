"""Forecast against hand-computed figures."""

from __future__ import annotations

from datetime import date

import pytest

from app.domain.forecast import forecast_fleet
from app.domain.mining import NetworkState
from app.domain.portfolio import MinerFacts, build_portfolio

NET = NetworkState(btc_price_usd=90_000, difficulty=1.0e14, block_reward_btc=3.125)
REL = 1e-12
START = date(2025, 1, 15)
S21 = MinerFacts("m1", "antminer-s21", "Antminer S21", "active", 200, 3500, 0.07, 2.0)
IDLE = MinerFacts("m2", "antminer-s21", "Antminer S21", "idle", 200, 3500, 0.07, 5.0)


def test_three_days_with_default_difficulty_growth() -> None:
    f = forecast_fleet([S21, IDLE], NET, START, days=3)
    assert [d.day for d in f.days] == [date(2025, 1, 15), date(2025, 1, 16), date(2025, 1, 17)]
    # difficulty grows 0.1 %/day, compounding: 1e14, 1e14 x 1.001 = 1.001e14, 1e14 x 1.001^2 = 1.002001e14
    assert [d.difficulty for d in f.days] == pytest.approx([1.0e14, 1.001e14, 1.002001e14], rel=REL)
    # day 0: 5.4e19 / (1e14 x 2^32) = 1.257285475730896e-4 BTC (see test_mining)
    # day 1: 1.257285475730896e-4 / 1.001 = 1.2560294462846117e-4
    # day 2: 1.257285475730896e-4 / 1.002001 = 1.2547746716129988e-4
    assert [d.btc_mined for d in f.days] == pytest.approx(
        [1.257285475730896e-4, 1.2560294462846117e-4, 1.2547746716129988e-4], rel=REL)
    # price flat at 90,000: revenue day 1 = 1.2560294462846117e-4 x 90,000 = 11.304265016561505
    assert f.days[1].revenue_usd == pytest.approx(11.304265016561505, rel=REL)
    assert {d.btc_price_usd for d in f.days} == {90_000}
    # cost is constant: 3.5 kW x 24 x 0.07 = 5.88 (the idle miner costs nothing)
    assert {round(d.cost_usd, 9) for d in f.days} == {5.88}
    # profit day 1 = 11.304265016561505 x 0.98 - 5.88 = 5.198179716230275
    assert f.days[1].profit_usd == pytest.approx(5.198179716230275, rel=REL)
    # totals: 5.209257895946503 + 5.198179716230276 + 5.187112603626651 = 15.59455021580343
    assert f.totals.profit_usd == pytest.approx(15.59455021580343, rel=REL)
    assert f.totals.cost_usd == pytest.approx(3 * 5.88, rel=REL)


def test_assumptions_are_returned() -> None:
    f = forecast_fleet([S21, IDLE], NET, START, owner_electricity_price_usd_kwh=0.06)
    a = f.assumptions
    assert a.horizon_days == 30 and len(f.days) == 30
    assert (a.difficulty_growth_pct_per_day, a.btc_price_growth_pct_per_day) == (0.1, 0.0)
    assert (a.btc_price_usd, a.difficulty, a.block_reward_btc) == (90_000, 1.0e14, 3.125)
    assert a.electricity_price_usd_kwh == 0.06
    assert a.pool_fee_pct == 2.0  # the idle miner's 5 % does not count


def test_price_path_and_given_start_price() -> None:
    # start at 100,000 and grow 1 %/day: 100,000, 101,000, 102,010; difficulty held flat (growth 0)
    f = forecast_fleet([S21], NET, START, days=3, btc_price_usd=100_000, btc_price_growth_pct_per_day=1.0,
                       difficulty_growth_pct_per_day=0.0)
    assert [d.btc_price_usd for d in f.days] == pytest.approx([100_000, 101_000, 102_010], rel=REL)
    # day 2 revenue = 1.257285475730896e-4 x 102,010 = 12.825569137930870
    assert f.days[2].revenue_usd == pytest.approx(1.257285475730896e-4 * 102_010, rel=REL)


def test_day_zero_matches_the_portfolio() -> None:
    fleet = [S21, MinerFacts("m3", "antminer-s19-pro", "Antminer S19 Pro", "active", 110, 3250, 0.05, 1.0)]
    p = build_portfolio(fleet, NET)
    d0 = forecast_fleet(fleet, NET, START, days=1).days[0]
    assert d0.btc_mined == pytest.approx(p.daily_btc, rel=REL)
    assert d0.revenue_usd == pytest.approx(p.daily_revenue_usd, rel=REL)
    assert d0.cost_usd == pytest.approx(p.daily_cost_usd, rel=REL)
    assert d0.profit_usd == pytest.approx(p.daily_profit_usd, rel=REL)


def test_empty_fleet_forecasts_zeros() -> None:
    f = forecast_fleet([], NET, START, days=2)
    assert f.totals.btc_mined == 0 and f.totals.profit_usd == 0


@pytest.mark.parametrize("days", [0, 366])
def test_horizon_bounds(days: int) -> None:
    with pytest.raises(ValueError, match="days"):
        forecast_fleet([S21], NET, START, days=days)


def test_a_grouped_fleet_forecasts_the_same_bits_as_the_fleet_miner_by_miner() -> None:
    fleet = [MinerFacts(f"m{i}", "antminer-s21", "Antminer S21", "active", 200.1, 3500.7, 0.071, 2.5)
             for i in range(500)] + [IDLE]
    grouped = [MinerFacts("m0", "antminer-s21", "Antminer S21", "active", 200.1, 3500.7, 0.071, 2.5, count=500),
               IDLE]
    assert forecast_fleet(grouped, NET, START) == forecast_fleet(fleet, NET, START)


def test_a_miner_with_downtime_must_not_hide_in_a_group() -> None:
    grouped = MinerFacts("m1", "antminer-s21", "Antminer S21", "active", 200, 3500, 0.07, 2.0, count=3)
    with pytest.raises(ValueError, match="stand alone"):
        forecast_fleet([grouped], NET, START, downtime={"m1": {START: 2.0}})
