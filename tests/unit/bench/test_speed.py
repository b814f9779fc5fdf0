"""The speed probe: a fixed piece of work, timed in CPU seconds, its median over rounds."""

from __future__ import annotations

import statistics
import time

import pytest

from tools.bench.speed import SpeedSampler, probe_ms, work


def test_each_round_does_the_same_work() -> None:
    assert work(50) == work(50)
    assert work(50) != work(51)


def test_the_median_round_is_reported_so_one_interrupted_round_does_not_move_it() -> None:
    ticks = iter([0.0, 0.010, 1.0, 1.012, 2.0, 2.500, 3.0, 3.011, 4.0, 4.013])  # 10, 12, 500, 11, 13 ms
    calls = []
    assert probe_ms(rounds=5, clock=lambda: next(ticks), job=lambda: calls.append(1)) == 12.0
    assert len(calls) == 5


def test_it_times_real_work_in_cpu_milliseconds() -> None:
    assert 0 < probe_ms(rounds=1) < 10_000


def test_it_needs_a_round() -> None:
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        probe_ms(rounds=0)


def test_the_sampler_reports_the_median_of_the_rounds_its_child_timed() -> None:
    sampler = SpeedSampler(every=0.05)
    deadline = time.monotonic() + 20
    while len(sampler.samples) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    median = sampler.stop()
    assert len(sampler.samples) >= 3, sampler.samples
    assert median == round(statistics.median(sampler.samples), 2) > 0
    assert sampler._proc.returncode is not None  # the child is gone
