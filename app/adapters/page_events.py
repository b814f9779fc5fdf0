"""Page notifications over Redis pub/sub: a consumer that changed what a user's page shows says so.

Channel `page:{user_id}`; message (JSON, one per user and consumer commit):

    {"user_id": "u1", "tenant_id": "t1", "consumer": "hashinsight.portfolio",
     "keys": ["user_portfolio:u1", "user_analytics:u1"],        # the cache keys just invalidated
     "event_ids": ["..."], "entity_ids": ["..."],               # the events of that commit, in order
     "committed_at": 1764612345.123456}                           # unix seconds, right after the DB commit

The consumers publish in the same pipelined Redis round trip as the invalidation (Cache.invalidate(...,
publish=...)), after it, so a reader woken by the message finds the new figures: in the cache when the consumer
wrote them through (the portfolio consumer does, for the users of its own events), else by loading them.
GET /analytics/stream (app/entrypoints/web/stream.py) relays them to the browser; tools/bench.py listens too.
Pub/sub is fire and forget: a page that was not connected learns nothing, which is why the page reloads its
figures whenever its stream (re)connects.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from app.adapters.cache import INVALIDATE_CHUNK, Fresh, get_cache


class _Event(Protocol):
    id: str
    entity_id: str | None


def channel(user_id: str) -> str:
    return f"page:{user_id}"


def message(user_id: str, tenant_id: str, consumer: str, keys: Sequence[str], events: Sequence[_Event],
            committed_at: float) -> str:
    entity_ids = list(dict.fromkeys(e.entity_id for e in events if e.entity_id))
    return json.dumps({
        "user_id": user_id,
        "tenant_id": tenant_id,
        "consumer": consumer,
        "keys": list(keys),
        "event_ids": [e.id for e in events],
        "entity_ids": entity_ids,
        "committed_at": committed_at,
    }, separators=(",", ":"))


def notifications(tenant_id: str, consumer: str, keys_by_user: Mapping[str, Sequence[str]],
                  events_by_user: Mapping[str, Sequence[_Event]], committed_at: float) -> dict[str, str]:
    """channel -> message for every user of a commit (what Cache.invalidate(publish=...) takes)."""
    return {
        channel(user): message(user, tenant_id, consumer, keys, events_by_user.get(user, ()), committed_at)
        for user, keys in keys_by_user.items()
    }


def invalidate_and_notify(tenant_id: str, consumer: str, events_by_user: Mapping[str, Sequence[_Event]],
                          keys_of: Callable[[str], list[str]], committed_at: float,
                          fanned_out: Mapping[str, Sequence[str]] | None = None,
                          cause: Sequence[_Event] = (), fresh: Mapping[str, Fresh] | None = None) -> None:
    """A consumer's after-commit step: drop each user's cache keys and tell their pages, in one round trip.

    Keys in `fresh` are written through instead (Cache.invalidate(fresh=...)), if still current.

    `fanned_out` (tenant -> users, a market fan-out's 10,000) is done the same way in chunks of INVALIDATE_CHUNK
    users, each chunk one script call plus its messages; their messages name the `cause` events. Raises when
    Redis is unreachable (the consumer loop retries until it is done)."""
    cache = get_cache()
    keys = {user: keys_of(user) for user in events_by_user}
    cache.invalidate(*(k for user_keys in keys.values() for k in user_keys), strict=True,
                     publish=notifications(tenant_id, consumer, keys, events_by_user, committed_at), fresh=fresh)
    for tenant, users in (fanned_out or {}).items():
        for i in range(0, len(users), INVALIDATE_CHUNK):
            part = {user: keys_of(user) for user in users[i:i + INVALIDATE_CHUNK]}
            cache.invalidate_many([k for user_keys in part.values() for k in user_keys],
                                  publish=notifications(tenant, consumer, part, {u: cause for u in part},
                                                        committed_at))
