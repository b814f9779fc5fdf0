"""The web's side of the pipeline lag (app/adapters/pipeline_lag.py), on the stack's Redis: a request gets the figure
in hand at once while a due read goes on in the background, and a figure older than the key's lifetime is not
used after a quiet spell."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis

from app.adapters.pipeline_lag import EVERY_S, KEY, TTL_MS, LagReader


async def _settles_to(reader: LagReader, want: float | None) -> float | None:
    """The figure once the read in flight has answered (the clock stands still, so no other read starts)."""
    deadline = time.monotonic() + 5
    while (got := reader.lag_ms()) != want and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return got


def test_the_figure_in_hand_is_answered_at_once_and_read_again_in_the_background(client: redis.Redis,
                                                                                clock: Any) -> None:
    async def scenario() -> None:
        reader = LagReader(client, clock=clock)
        client.set(KEY, "300", px=10_000)
        assert reader.lag_ms() is None  # nothing in hand yet; the first read has started
        assert await _settles_to(reader, 300.0) == 300.0

        client.delete(KEY)
        clock.advance(EVERY_S)  # a read is due, and the figure in hand is younger than the key lives
        assert reader.lag_ms() == 300.0  # the request does not wait for Redis
        assert await _settles_to(reader, None) is None

    try:
        asyncio.run(scenario())
    finally:
        client.delete(KEY)


def test_a_figure_older_than_the_key_lives_is_dropped_after_a_quiet_spell(client: redis.Redis, clock: Any) -> None:
    async def scenario() -> None:
        reader = LagReader(client, clock=clock)
        client.set(KEY, "300", px=10_000)
        reader.lag_ms()
        assert await _settles_to(reader, 300.0) == 300.0

        client.delete(KEY)  # the worker caught up, and no request came for a while
        clock.advance(TTL_MS / 1000 + 0.1)
        assert reader.lag_ms() is None  # not the 300 read before the key could have expired
        assert await _settles_to(reader, None) is None
        client.set(KEY, "450", px=10_000)  # behind again: the next due read says so
        clock.advance(EVERY_S)
        reader.lag_ms()
        assert await _settles_to(reader, 450.0) == 450.0

    try:
        asyncio.run(scenario())
    finally:
        client.delete(KEY)
