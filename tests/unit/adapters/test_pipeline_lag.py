"""When the page's worker writes its lag (app/adapters/pipeline_lag.py): only what the web needs, not every batch."""

from __future__ import annotations

import redis

from app.adapters.pipeline_lag import KEY, LagPublisher


class _Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.writes: list[tuple[str, str, int]] = []
        self.fail = fail

    def set(self, key: str, value: str, px: int) -> None:
        if self.fail:
            raise redis.ConnectionError("down")
        self.writes.append((key, value, px))


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_calm_bus_writes_nothing_a_lagging_one_is_written_at_most_every_interval_and_its_end_once():
    r, clock = _Recorder(), _Clock()
    pub = LagPublisher(r, clock=clock, every_s=0.25, floor_ms=250, ttl_ms=1500)  # type: ignore[arg-type]
    assert not pub.observe(80.0) and not pub.observe(None)
    assert pub.observe(1200.0)
    clock.now = 0.1
    assert not pub.observe(1900.0)  # within the interval
    clock.now = 0.3
    assert pub.observe(1900.0)
    clock.now = 0.6
    assert pub.observe(40.0)  # back under the floor: said once, so the web stops refusing at once
    clock.now = 0.9
    assert not pub.observe(30.0)
    assert r.writes == [(KEY, "1200", 1500), (KEY, "1900", 1500), (KEY, "40", 1500)]


def test_redis_down_is_logged_not_raised_and_retried_on_the_next_batch():
    r, clock = _Recorder(fail=True), _Clock()
    pub = LagPublisher(r, clock=clock)  # type: ignore[arg-type]
    assert not pub.observe(5000.0)
    r.fail = False
    assert pub.observe(5000.0)
