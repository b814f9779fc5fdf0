"""The watchdog's backoff: first restart at once, then doubling waits up to a cap, forgiven after healthy time."""

from __future__ import annotations

from app.domain.restart_policy import RestartBackoff


def test_restarts_back_off_exponentially_up_to_the_cap():
    b = RestartBackoff(base_delay=2, max_delay=20, forgive_after=60)
    now = 0.0
    waits = []
    for _ in range(6):
        assert b.may_restart(now)
        waits.append(b.restarted(now))
        assert not b.may_restart(now + waits[-1] - 0.01)
        now += waits[-1]
    assert waits == [2, 4, 8, 16, 20, 20]


def test_a_long_healthy_spell_forgives_the_history():
    b = RestartBackoff(base_delay=2, max_delay=20, forgive_after=60)
    for t in (0, 2, 6):
        b.restarted(t)
    b.healthy(10)
    b.healthy(69)  # healthy for 59 s: not yet
    assert b.failures == 3
    b.healthy(70)
    assert b.failures == 0 and b.may_restart(70)
    assert b.restarted(70) == 2


def test_failing_again_restarts_the_healthy_clock():
    b = RestartBackoff(base_delay=2, max_delay=20, forgive_after=60)
    b.restarted(0)
    b.healthy(5)
    b.restarted(30)  # failed again before 60 s of health
    b.healthy(40)
    b.healthy(95)  # only 55 s since it was healthy again
    assert b.failures == 2
