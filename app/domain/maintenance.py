"""Maintenance windows as the domain sees them: which UTC days a window touches, and the downtime it makes.

Pure: no I/O, no clock. A window is the half-open interval [starts_at, ends_at) of aware datetimes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

HOURS_PER_DAY = 24.0


@dataclass(frozen=True)
class Window:
    miner_id: str
    starts_at: datetime
    ends_at: datetime


def days_touched(starts_at: datetime, ends_at: datetime) -> list[date]:
    """Every UTC calendar day the window [starts_at, ends_at) overlaps, in order."""
    if ends_at <= starts_at:
        return []
    first = starts_at.astimezone(timezone.utc).date()
    last = (ends_at.astimezone(timezone.utc) - timedelta(microseconds=1)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def downtime_hours(windows: Iterable[Window]) -> dict[str, dict[date, float]]:
    """Hours of maintenance per miner per UTC day (windows of one miner never overlap)."""
    hours: dict[str, dict[date, float]] = defaultdict(lambda: defaultdict(float))
    for w in windows:
        for day in days_touched(w.starts_at, w.ends_at):
            day_start = datetime.combine(day, time.min, tzinfo=timezone.utc)
            overlap = min(w.ends_at, day_start + timedelta(days=1)) - max(w.starts_at, day_start)
            hours[w.miner_id][day] += overlap.total_seconds() / 3600
    return {m: {d: min(h, HOURS_PER_DAY) for d, h in days.items()} for m, days in hours.items()}


def uptime_fraction(downtime: Mapping[date, float], day: date) -> float:
    """The share of `day` a miner is not in maintenance (1.0 without a window)."""
    return max(0.0, 1.0 - downtime.get(day, 0.0) / HOURS_PER_DAY)
