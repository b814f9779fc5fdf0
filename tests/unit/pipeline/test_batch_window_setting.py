"""The batch window a worker runs with: its handler's, unless the environment says otherwise."""

from __future__ import annotations

import pytest

from workers.consumer_loop import BATCH_WINDOW_ENV, batch_window_s
from workers.intel_consumer import IntelHandler
from workers.portfolio_consumer import PortfolioHandler


class _Plain:
    pass


class _Windowed:
    batch_window_ms = 250


def test_a_handler_without_a_window_takes_what_has_arrived():
    assert batch_window_s(_Plain(), {}) == 0


def test_the_handler_sets_the_window_in_milliseconds():
    assert batch_window_s(_Windowed(), {}) == 0.25


@pytest.mark.parametrize(("raw", "seconds"), [("40", 0.04), ("0", 0.0), (" 1000 ", 1.0), ("", 0.25)])
def test_the_environment_overrides_the_handler(raw, seconds):
    assert batch_window_s(_Windowed(), {BATCH_WINDOW_ENV: raw}) == seconds


@pytest.mark.parametrize("raw", ["fast", "-5", "5001", "nan"])
def test_a_window_that_is_not_0_to_5000_ms_is_refused_by_name(raw):
    with pytest.raises(ValueError, match="batch window|HASHINSIGHT_BATCH_WINDOW_MS"):
        batch_window_s(_Windowed(), {BATCH_WINDOW_ENV: raw})


def test_the_page_path_takes_no_window_and_the_forecast_one_does():
    # The portfolio consumer is on the commit-to-page path; the forecast is not, so it trades ~0.25 s of
    # freshness for fewer, larger batches.
    assert batch_window_s(PortfolioHandler(), {}) == 0
    assert 0 < batch_window_s(IntelHandler(), {}) <= 0.5
