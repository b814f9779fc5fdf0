"""Maintenance windows in the domain: the UTC days a window touches, its downtime, and the forecast's use of it."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from app.domain.forecast import forecast_fleet
from app.domain.maintenance import Window, days_touched, downtime_hours, uptime_fraction
from app.domain.mining import NetworkState
from app.domain.portfolio import MinerFacts

UTC = timezone.utc


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2031, 6, day, hour, minute, tzinfo=UTC)


def test_the_days_a_window_touches_are_utc_days_and_the_end_is_exclusive():
    assert days_touched(at(1, 22), at(2, 2)) == [date(2031, 6, 1), date(2031, 6, 2)]
    assert days_touched(at(1, 8), at(2, 0)) == [date(2031, 6, 1)]  # ends at midnight: day 2 untouched
    assert days_touched(at(1, 8), at(1, 8)) == []
    plus2 = timezone(timedelta(hours=2))
    assert days_touched(datetime(2031, 6, 2, 1, tzinfo=plus2), datetime(2031, 6, 2, 3, tzinfo=plus2)) == [
        date(2031, 6, 1), date(2031, 6, 2)]


def test_downtime_is_hours_per_miner_per_day():
    hours = downtime_hours([Window("m1", at(1, 22), at(2, 2)), Window("m1", at(3, 0), at(4, 0)),
                            Window("m2", at(1, 10), at(1, 10, 30))])
    assert hours["m1"] == {date(2031, 6, 1): 2.0, date(2031, 6, 2): 2.0, date(2031, 6, 3): 24.0}
    assert hours["m2"] == {date(2031, 6, 1): 0.5}
    assert uptime_fraction(hours["m1"], date(2031, 6, 3)) == 0.0
    assert uptime_fraction(hours["m1"], date(2031, 6, 9)) == 1.0


def test_a_miner_in_maintenance_earns_nothing_and_draws_no_power_for_those_hours():
    net = NetworkState(100_000.0, 1.1e14, 3.125, at(1, 0))
    fleet = [MinerFacts("m1", "s21", "S21", "active", 200.0, 3500, 0.05, 2.0),
             MinerFacts("m2", "s21", "S21", "active", 200.0, 3500, 0.05, 2.0)]
    plain = forecast_fleet(fleet, net, date(2031, 6, 1), days=3, difficulty_growth_pct_per_day=0)
    down = forecast_fleet(fleet, net, date(2031, 6, 1), days=3, difficulty_growth_pct_per_day=0,
                          downtime=downtime_hours([Window("m1", at(2, 0), at(3, 0)), Window("m2", at(3, 0), at(3, 6))]))
    assert down.days[0] == plain.days[0]
    assert down.days[1].btc_mined == pytest.approx(plain.days[1].btc_mined / 2)
    assert down.days[1].cost_usd == pytest.approx(plain.days[1].cost_usd / 2)
    assert down.days[2].btc_mined == pytest.approx(plain.days[2].btc_mined * (1 - 0.25 / 2))
    assert down.totals.revenue_usd < plain.totals.revenue_usd
