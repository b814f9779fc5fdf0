"""How long an in-process cache entry lives: its TTL less a random share of it.

Entries cached at one moment (the users of a busy second, every active user after a web restart) would expire at
one moment too, and be looked up again together: a TTL later, and every TTL after that, since each is cached
anew at its user's next request. Under load that herd is a burst of token checks and database round trips on
the web (the benchmark's timeline showed one 60 s after its users signed in). Drawing each entry's lifetime from
75-100 % of the TTL spreads them within a few rounds; none outlives the TTL, so the TTL stays the bound it
promises (a removed key stops working, a missed plan change is corrected, within it).
"""

from __future__ import annotations

import random
from collections.abc import Callable

SPREAD = 0.25


def lifetime(ttl: float, *, spread: float = SPREAD, draw: Callable[[], float] = random.random) -> float:
    """Seconds an entry cached now lives: in (ttl * (1 - spread), ttl]."""
    return ttl * (1.0 - spread * draw())
