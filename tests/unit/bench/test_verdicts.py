"""The bench's verdict lines: a latency target counts only at a rate the system held."""

from __future__ import annotations

from typing import Any

from tools.bench.report import verdicts


def _summary(rate: float, acked_per_s: float, errors: dict[str, int], p95: float, p99: float) -> dict[str, Any]:
    return {
        "label": f"rate-{rate:g}", "rate": rate, "acknowledged_per_s": acked_per_s, "errors": errors,
        "stages_ms": {"total": {"p50": p95 / 2, "p95": p95, "p99": p99, "max": p99}},
        "cpu_ms_per_write_total": 9.0, "checks": {"exactly_once": True},
    }


def test_a_held_rate_within_its_latency_target_meets_it() -> None:
    (line,) = verdicts([_summary(200, 200.0, {}, 800, 900)])
    assert "(target P95 <= 1000: met)" in line and "acknowledged" not in line


def test_a_rate_held_only_by_refusing_writes_does_not_meet_its_target_and_says_why() -> None:
    (line,) = verdicts([_summary(200, 190.3, {"503": 193, "-1": 2}, 800, 900)])
    assert "(target P95 <= 1000: NOT met)" in line
    assert "acknowledged 190.3/s of 200 (no answer: 2, 503: 193)" in line
    (line,) = verdicts([_summary(200, 190.3, {"503": 193}, 800, 900)
                        | {"refused_as": {"overloaded": 150, "pipeline-behind": 43}}])
    assert "(503: 193) refused as overloaded: 150, pipeline-behind: 43" in line


def test_the_cpu_verdict_names_the_machine_speed_it_was_measured_at() -> None:
    s = _summary(100, 100.0, {}, 120, 150) | {"speed_probe_ms": 33.456}
    (line,) = verdicts([s])
    assert "CPU 9.0 ms/write (target <= 10: met; speed probe 33.5 ms)" in line
    (line,) = verdicts([_summary(100, 100.0, {}, 120, 150)])
    assert "speed probe - ms" in line
