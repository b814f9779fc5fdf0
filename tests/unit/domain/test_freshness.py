"""The freshness guard's policy (app/domain/freshness.py)."""

from __future__ import annotations

import math

import pytest

from app.domain.freshness import LATE_APPEND_S, batch_lag_ms, counts_as_load, retry_after_s, shed_share


@pytest.mark.parametrize(("lag", "share"), [
    (None, 0.0), (0.0, 0.0), (999.0, 0.0), (1000.0, 0.0), (1250.0, 0.25), (1500.0, 0.5), (2000.0, 1.0),
    (60_000.0, 1.0), (math.nan, 0.0),
])
def test_the_share_refused_grows_from_none_at_the_threshold_to_all_at_twice_it(lag, share):
    assert shed_share(lag, 1000) == pytest.approx(share)


def test_a_threshold_of_zero_turns_the_guard_off():
    assert shed_share(60_000.0, 0) == 0.0


@pytest.mark.parametrize(("lag", "seconds"), [(0.0, 1), (1001.0, 2), (2500.0, 3), (600_000.0, 10), (math.inf, 1)])
def test_retry_after_is_about_the_lag_within_one_to_ten_seconds(lag, seconds):
    assert retry_after_s(lag) == seconds


def test_a_record_appended_long_after_its_commit_is_not_load():
    assert counts_as_load(100.0, None)
    assert counts_as_load(100.0, 100.0 + LATE_APPEND_S)
    assert not counts_as_load(100.0, 100.0 + LATE_APPEND_S + 0.001)  # a redrive, or a backlog after an outage


def test_a_batch_lag_is_its_oldest_counted_event():
    now = 1000.0
    assert batch_lag_ms([(999.5, 999.6), (998.0, 998.1), (900.0, 950.0)], now) == pytest.approx(2000.0)
    assert batch_lag_ms([(900.0, 950.0)], now) is None
    assert batch_lag_ms([], now) is None
    assert batch_lag_ms([(1000.5, None)], now) == 0.0  # clocks a little apart: never negative
