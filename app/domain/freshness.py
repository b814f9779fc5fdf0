"""When the bus is behind, writes wait: the freshness guard's policy.

The product's promise is that a write shows on the page within seconds. When more writes arrive than the bus can
carry (the consumers, the connector or PostgreSQL short of CPU or slowed), it falls behind, and every write
accepted after that waits longer than the one before. The guard keeps the promise for what it accepts:
the page's consumer reports how far behind it is (its pipeline lag: commit to consumer commit), and the API
refuses a share of the writes, with a 503 and Retry-After, that grows from none at `threshold_ms` of lag to all
at twice that. A refused write costs a fraction of a millisecond; an accepted one about ten, spent downstream.

A record appended to Kafka long after its commit (a redrive of a dead letter, a backlog the connector delivers
after an outage) tells of the past, not of the load now: it does not count (`counts_as_load`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

DEFAULT_THRESHOLD_MS = 1000
# A record the connector appended to Kafka this long after its commit arrived late for a reason other than load.
LATE_APPEND_S = 10.0
MAX_RETRY_AFTER_S = 10


def shed_share(lag_ms: float | None, threshold_ms: float) -> float:
    """The share of writes to refuse at this lag: 0 up to the threshold, 1 from twice it, linear in between.
    No lag known, or a threshold of 0 (the guard off), refuses none."""
    if lag_ms is None or threshold_ms <= 0 or not lag_ms > threshold_ms:  # `not >` also takes NaN
        return 0.0
    return min(1.0, (lag_ms - threshold_ms) / threshold_ms)


def retry_after_s(lag_ms: float) -> int:
    """Seconds a refused writer should wait: about as long as the bus is behind, 1 to MAX_RETRY_AFTER_S."""
    return max(1, min(MAX_RETRY_AFTER_S, math.ceil(lag_ms / 1000))) if math.isfinite(lag_ms) else 1


def counts_as_load(committed_at_s: float, appended_at_s: float | None) -> bool:
    """Whether an event's lag says anything about the load now (see the module docstring)."""
    return appended_at_s is None or appended_at_s - committed_at_s <= LATE_APPEND_S


def batch_lag_ms(events: Iterable[tuple[float, float | None]], now_s: float) -> float | None:
    """The largest commit-to-now lag, in ms, of the events that count as load; None when none does.
    Each event is (committed at, appended to Kafka at or None), unix seconds."""
    lags = [now_s - committed for committed, appended in events if counts_as_load(committed, appended)]
    return max(0.0, 1000 * max(lags)) if lags else None
