"""Mining math against hand-computed figures (the arithmetic is in the comments)."""

from __future__ import annotations

import pytest

from app.domain.mining import (
    NetworkState,
    break_even_usd_kwh,
    daily_btc,
    daily_power_cost_usd,
    miner_economics,
    pool_fee_usd,
    round_btc,
    round_usd,
)

NET = NetworkState(btc_price_usd=90_000, difficulty=1.0e14, block_reward_btc=3.125)
REL = 1e-12


def test_daily_btc_of_200_ths() -> None:
    # 200 TH/s = 200 x 1e12 = 2e14 H/s
    # 2e14 x 86,400 s = 1.728e19 hashes/day; x 3.125 BTC = 5.4e19
    # difficulty x 2^32 = 1e14 x 4,294,967,296 = 4.294967296e23
    # 5.4e19 / 4.294967296e23 = 1.257285475730896e-4 BTC/day
    assert daily_btc(200, NET) == pytest.approx(1.257285475730896e-4, rel=REL)


def test_power_cost_and_fee() -> None:
    # 3,500 W = 3.5 kW; 3.5 x 24 h = 84 kWh; 84 x 0.07 $/kWh = 5.88 $/day
    assert daily_power_cost_usd(3500, 0.07) == pytest.approx(5.88, rel=REL)
    # 2 % of 11.315569281578064 = 0.22631138563156128
    assert pool_fee_usd(11.315569281578064, 2.0) == pytest.approx(0.22631138563156128, rel=REL)


def test_miner_economics_of_the_reference_miner() -> None:
    e = miner_economics(200, 3500, 0.07, 2.0, NET)
    # revenue = 1.257285475730896e-4 BTC x 90,000 $ = 11.315569281578064 $
    assert e.daily_revenue_usd == pytest.approx(11.315569281578064, rel=REL)
    # fee = 11.315569281578064 x 0.02 = 0.22631138563156128
    assert e.daily_pool_fee_usd == pytest.approx(0.22631138563156128, rel=REL)
    assert e.daily_cost_usd == pytest.approx(5.88, rel=REL)
    # profit = 11.315569281578064 - 0.22631138563156128 - 5.88 = 5.209257895946503
    assert e.daily_profit_usd == pytest.approx(5.209257895946503, rel=REL)
    # break-even = (11.315569281578064 - 0.22631138563156128) / (3.5 kW x 24 h = 84 kWh)
    #            = 11.089257895946503 / 84 = 0.13201497495174408 $/kWh
    assert e.break_even_usd_kwh == pytest.approx(0.13201497495174408, rel=REL)
    # at the break-even price the profit is zero
    at_break_even = miner_economics(200, 3500, e.break_even_usd_kwh, 2.0, NET)
    assert at_break_even.daily_profit_usd == pytest.approx(0.0, abs=1e-12)


def test_loss_making_miner_has_negative_profit() -> None:
    # 100 TH/s earns half of the above: 5.657784640789032 $; fee 2 % = 0.11315569281578064;
    # cost 3.25 kW x 24 x 0.10 = 7.8 $; profit = 5.657784640789032 - 0.11315569281578064 - 7.8 = -2.25537...
    e = miner_economics(100, 3250, 0.10, 2.0, NET)
    assert e.daily_profit_usd == pytest.approx(5.657784640789032 - 0.11315569281578064 - 7.8, rel=REL)
    assert e.daily_profit_usd < 0


def test_no_power_means_no_break_even() -> None:
    assert break_even_usd_kwh(10.0, 0.2, 0) is None


def test_network_state_rejects_zero_difficulty() -> None:
    with pytest.raises(ValueError, match="difficulty"):
        NetworkState(btc_price_usd=90_000, difficulty=0, block_reward_btc=3.125)


def test_presentation_rounding() -> None:
    assert round_btc(1.257285475730896e-4) == 0.00012573
    assert round_usd(11.315569281578064) == 11.3156
