"""Portfolio aggregation against hand-computed figures."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from app.domain.mining import NetworkState
from app.domain.portfolio import MinerFacts, build_portfolio

NET = NetworkState(btc_price_usd=90_000, difficulty=1.0e14, block_reward_btc=3.125)
REL = 1e-12
# One TH/s for a day at NET: 1e12 x 86,400 x 3.125 / (1e14 x 2^32) = 6.28642737865448e-7 BTC
PER_THS_BTC = 6.28642737865448e-7


def miner(miner_id: str, model_id: str, status: str, ths: float, watts: float, price: float = 0.07,
          fee: float = 2.0) -> MinerFacts:
    return MinerFacts(miner_id, model_id, model_id.replace("-", " ").title(), status, ths, watts, price, fee)


FLEET = [
    miner("m1", "antminer-s21", "active", 200, 3500),
    miner("m2", "antminer-s21", "active", 200, 3500, price=0.05),
    miner("m3", "antminer-s19-pro", "active", 110, 3250, fee=1.0),
    miner("m4", "antminer-s19-pro", "idle", 110, 3250),
    miner("m5", "antminer-s19-pro", "retired", 110, 3250),
    miner("m6", "whatsminer-m50s", "offline", 126, 3276),
]


def test_counts_cover_every_status_including_zeros() -> None:
    p = build_portfolio(FLEET, NET)
    assert p.miners_total == 6
    assert p.miners_by_status == {"active": 3, "idle": 1, "maintenance": 0, "offline": 1, "retired": 1}


def test_only_active_miners_hash_and_draw_power() -> None:
    p = build_portfolio(FLEET, NET)
    # active: m1 200 + m2 200 + m3 110 = 510 TH/s; 3,500 + 3,500 + 3,250 = 10,250 W
    assert p.active_hashrate_ths == 510
    assert p.active_power_w == 10_250
    # 510 x 6.28642737865448e-7 = 3.206077963113785e-4 BTC/day
    assert p.daily_btc == pytest.approx(510 * PER_THS_BTC, rel=REL)
    assert p.daily_btc == pytest.approx(3.206077963113785e-4, rel=REL)
    # revenue = 3.206077963113785e-4 x 90,000 = 28.854701668024063
    assert p.daily_revenue_usd == pytest.approx(28.854701668024063, rel=REL)
    # fee: m1, m2 at 2 % of 11.315569281578064 = 0.22631138563156128 each;
    #      m3 at 1 % of (110 x 6.28642737865448e-7 x 90,000 = 6.223563104867935) = 0.06223563104867935
    #      total 0.22631138563156128 x 2 + 0.06223563104867935 = 0.5148584023118019
    assert p.daily_pool_fee_usd == pytest.approx(0.5148584023118019, rel=REL)
    # cost: m1 3.5 x 24 x 0.07 = 5.88; m2 3.5 x 24 x 0.05 = 4.20; m3 3.25 x 24 x 0.07 = 5.46; total 15.54
    assert p.daily_cost_usd == pytest.approx(15.54, rel=REL)
    # profit = 28.854701668024063 - 0.5148584023118019 - 15.54 = 12.799843265712262
    assert p.daily_profit_usd == pytest.approx(12.799843265712262, rel=REL)
    # break-even (power-weighted) = (28.854701668024063 - 0.5148584023118019) / (10.25 kW x 24 = 246 kWh)
    #                             = 28.33984326571226 / 246 = 0.11520261490126936 $/kWh
    assert p.break_even_usd_kwh == pytest.approx(0.11520261490126936, rel=REL)


def test_per_model_breakdown_sorted_by_model_id() -> None:
    p = build_portfolio(FLEET, NET)
    assert [m.model_id for m in p.by_model] == ["antminer-s19-pro", "antminer-s21", "whatsminer-m50s"]
    s19, s21, m50 = p.by_model
    assert (s19.miners, s19.active_miners, s19.hashrate_ths, s19.power_w) == (3, 1, 110, 3250)
    # s19: revenue 6.223563104867935, fee 1 % 0.06223563104867935, cost 5.46 -> profit 0.7013274738192557
    assert s19.daily_profit_usd == pytest.approx(6.223563104867935 - 0.06223563104867935 - 5.46, rel=REL)
    assert (s21.miners, s21.active_miners, s21.hashrate_ths, s21.power_w) == (2, 2, 400, 7000)
    # s21: revenue 2 x 11.315569281578064 = 22.631138563156128; fee 0.45262277126312256; cost 5.88 + 4.2
    assert s21.daily_revenue_usd == pytest.approx(22.631138563156128, rel=REL)
    assert s21.daily_cost_usd == pytest.approx(10.08, rel=REL)
    assert s21.daily_profit_usd == pytest.approx(22.631138563156128 - 0.45262277126312256 - 10.08, rel=REL)
    # a model with no active miner is listed with zeros
    assert (m50.miners, m50.active_miners, m50.hashrate_ths, m50.daily_btc, m50.daily_profit_usd) == (1, 0, 0, 0, 0)
    assert m50.model_name == "Whatsminer M50S"
    # the per-model figures add up to the totals
    assert sum(m.daily_revenue_usd for m in p.by_model) == pytest.approx(p.daily_revenue_usd, rel=REL)
    assert sum(m.daily_profit_usd for m in p.by_model) == pytest.approx(p.daily_profit_usd, rel=REL)


def test_spec_example_figures() -> None:
    # contracts/openapi.yaml's Portfolio example: 510 TH/s, 10,250 W at 100,000 $, difficulty 1.1e14, 0.07, 2 %
    net = NetworkState(btc_price_usd=100_000, difficulty=1.1e14, block_reward_btc=3.125)
    fleet = [miner("a", "antminer-s21", "active", 200, 3500), miner("b", "antminer-s21", "active", 200, 3500),
             miner("c", "antminer-s19-pro", "active", 110, 3250), miner("d", "antminer-s19-pro", "idle", 110, 3250)]
    p = build_portfolio(fleet, net)
    # 510e12 x 86,400 x 3.125 / (1.1e14 x 2^32) = 2.914616330103441e-4 -> 0.00029146 BTC
    assert round(p.daily_btc, 8) == 0.00029146
    # revenue 29.14616330103441 -> 29.1462; cost 10.25 x 24 x 0.07 = 17.22;
    # profit 29.14616330103441 x 0.98 - 17.22 = 11.343240035013722 -> 11.3432; break-even 28.5632/246 = 0.1161
    assert (round(p.daily_revenue_usd, 4), round(p.daily_cost_usd, 4)) == (29.1462, 17.22)
    assert (round(p.daily_profit_usd, 4), round(p.break_even_usd_kwh or 0, 4)) == (11.3432, 0.1161)


def test_no_active_miner_means_no_break_even() -> None:
    p = build_portfolio([miner("m4", "antminer-s19-pro", "idle", 110, 3250)], NET)
    assert p.break_even_usd_kwh is None
    assert (p.active_hashrate_ths, p.daily_btc, p.daily_cost_usd, p.daily_profit_usd) == (0, 0, 0, 0)


def test_empty_fleet() -> None:
    p = build_portfolio([], NET)
    assert p.miners_total == 0 and p.by_model == () and p.break_even_usd_kwh is None
    assert set(p.miners_by_status.values()) == {0}


def test_row_order_does_not_change_a_single_bit() -> None:
    shuffled = FLEET[:]
    random.Random(7).shuffle(shuffled)
    assert build_portfolio(shuffled, NET) == build_portfolio(FLEET, NET)


def test_decimal_inputs_become_floats() -> None:
    decimal_fleet = [MinerFacts(m.miner_id, m.model_id, m.model_name, m.status, Decimal(str(m.hashrate_ths)),
                                Decimal(str(m.power_w)), Decimal(str(m.electricity_price_usd_kwh)),
                                Decimal(str(m.pool_fee_pct))) for m in FLEET]
    net = NetworkState(Decimal("90000"), Decimal("1e14"), Decimal("3.125"))  # type: ignore[arg-type]
    assert build_portfolio(decimal_fleet, net) == build_portfolio(FLEET, NET)


def test_unknown_status_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown miner status"):
        build_portfolio([miner("x", "antminer-s21", "broken", 200, 3500)], NET)


def _grouped(fleet: list[MinerFacts]) -> list[MinerFacts]:
    """The fleet as the fleet query returns it: identical miners folded into one row with their count."""
    groups: dict[tuple, list[MinerFacts]] = {}
    for m in fleet:
        key = (m.model_id, m.model_name, m.status, m.hashrate_ths, m.power_w, m.electricity_price_usd_kwh,
               m.pool_fee_pct)
        groups.setdefault(key, []).append(m)
    return [MinerFacts(ms[0].miner_id, *key[:2], key[2], *key[3:], count=len(ms)) for key, ms in groups.items()]


def test_a_grouped_fleet_gives_the_same_bits_as_the_fleet_miner_by_miner() -> None:
    rng = random.Random(11)
    # Values whose sums round differently from count x value: a product shortcut would show here.
    fleet = [miner(f"m{i}", rng.choice(["antminer-s21", "antminer-s19-pro"]), rng.choice(["active", "idle"]),
                   rng.choice([200.1, 110.3]), rng.choice([3500.7, 3250.1]), rng.choice([0.071, 0.05]))
             for i in range(3000)]
    grouped = _grouped(fleet)
    assert len(grouped) < 40 and sum(m.count for m in grouped) == 3000
    assert build_portfolio(grouped, NET) == build_portfolio(fleet, NET)


def test_a_fleet_row_stands_for_at_least_one_miner() -> None:
    with pytest.raises(ValueError, match="at least one miner"):
        MinerFacts("m1", "antminer-s21", "Antminer S21", "active", 200, 3500, 0.07, 2.0, count=0)
