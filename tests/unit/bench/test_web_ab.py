"""The side-by-side comparison's summary: medians per side and of the per-round ratios."""

from __future__ import annotations

import pytest

from tools.bench.web_ab import summarize


def test_the_ratio_is_the_median_of_each_rounds_ratio_not_of_the_medians() -> None:
    # The machine slows down in round 3: both sides cost more, the ratio of that round does not move.
    s = summarize([2.0, 2.0, 4.0], [1.9, 1.9, 3.8])
    assert (s["base_ms"], s["new_ms"], s["ratio"]) == (2.0, 1.9, 0.95)
    assert s["ratios"] == [0.95, 0.95, 0.95]


def test_rounds_must_pair_up() -> None:
    with pytest.raises(ValueError):
        summarize([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        summarize([], [])
