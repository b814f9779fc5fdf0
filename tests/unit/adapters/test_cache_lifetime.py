"""In-process cache entries live a random 75-100 % of their TTL, never longer: entries cached together do not
expire together."""

from __future__ import annotations

import random

from app.adapters.cache_lifetime import SPREAD, lifetime


def test_a_lifetime_is_within_the_spread_below_the_ttl_and_never_past_it() -> None:
    assert lifetime(60.0, draw=lambda: 0.0) == 60.0
    assert lifetime(60.0, draw=lambda: 0.999999) > 60.0 * (1 - SPREAD)
    assert lifetime(60.0, spread=0.0, draw=lambda: 0.7) == 60.0


def test_entries_cached_together_expire_apart() -> None:
    rng = random.Random(7)
    lifetimes = [lifetime(60.0, draw=rng.random) for _ in range(400)]
    assert all(45.0 < t <= 60.0 for t in lifetimes)
    # 400 entries of one second spread over the last quarter of the TTL: no one second holds more than a fifth.
    per_second = [sum(1 for t in lifetimes if s <= t < s + 1) for s in range(45, 60)]
    assert max(per_second) < 80, per_second
