"""When a watchdog may restart something that keeps failing: capped exponential backoff, forgiven after a while.

The first restart happens at once; each further one waits twice as long as the last (base_delay, 2x, 4x, ...)
up to `max_delay`. Once the thing has stayed healthy for `forgive_after` seconds its history is forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RestartBackoff:
    base_delay: float = 2.0
    max_delay: float = 120.0
    forgive_after: float = 120.0
    failures: int = 0
    next_allowed_at: float = 0.0
    healthy_since: float | None = None

    def healthy(self, now: float) -> None:
        if self.healthy_since is None:
            self.healthy_since = now
        if self.failures and now - self.healthy_since >= self.forgive_after:
            self.failures = 0
            self.next_allowed_at = 0.0

    def may_restart(self, now: float) -> bool:
        return now >= self.next_allowed_at

    def restarted(self, now: float) -> float:
        """Record a restart; returns the seconds before another one is allowed."""
        self.healthy_since = None
        delay = min(self.max_delay, self.base_delay * 2 ** min(self.failures, 30))
        self.failures += 1
        self.next_allowed_at = now + delay
        return delay
