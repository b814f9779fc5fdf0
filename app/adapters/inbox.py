"""consumer_inbox: the idempotent consumer's "already applied" marks, written in the effect's transaction.

Also the consumers' database guard: a transaction-scoped advisory lock per (tenant, user), so two
recalculations of one user never interleave, whatever happened to the Redis lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from app.adapters.prepared import Prepared


@dataclass(frozen=True)
class Mark:
    event_id: str
    kind: str
    user_id: str


# One statement for a whole batch. A duplicate key means "already applied": ON CONFLICT DO NOTHING returns no
# row for it. processed_at is the clock time of the claim, not the transaction's start.
_CLAIM = Prepared(
    "inbox_claim",
    """INSERT INTO consumer_inbox (consumer_name, event_id, tenant_id, kind, user_id, processed_at)
       SELECT CAST(:c AS text), r.event_id, CAST(:t AS text), r.kind, r.user_id, clock_timestamp()
         FROM unnest(CAST(:event_ids AS text[]), CAST(:kinds AS text[]), CAST(:user_ids AS text[]))
              AS r (event_id, kind, user_id)
       ON CONFLICT (consumer_name, event_id) DO NOTHING
       RETURNING event_id""",
)
_FORGET = Prepared("inbox_forget", "DELETE FROM consumer_inbox WHERE consumer_name = CAST(:c AS text) "
                                   "AND event_id = ANY(CAST(:event_ids AS text[]))")


def claim_many(conn: Connection, consumer: str, tenant_id: str, marks: Sequence[Mark], *, force: bool = False
               ) -> set[str]:
    """The ids among `marks` that are new for this consumer (all of them, with force).

    force (a replay that bypasses the inbox) replaces the old marks with new ones, stamped with this time.
    """
    if not marks:
        return set()
    ids = [m.event_id for m in marks]
    if force:
        _FORGET(conn, {"c": consumer, "event_ids": ids})
    rows = _CLAIM(
        conn,
        {"c": consumer, "t": tenant_id, "event_ids": ids, "kinds": [m.kind for m in marks],
         "user_ids": [m.user_id for m in marks]},
    )
    return {r[0] for r in rows}


def claim(conn: Connection, consumer: str, event_id: str, tenant_id: str, kind: str, user_id: str, *,
          force: bool = False) -> bool:
    """True when the event is new for this consumer (always, with force); False when already applied."""
    return bool(claim_many(conn, consumer, tenant_id, [Mark(event_id, kind, user_id)], force=force))


# Sorted, so two transactions locking overlapping sets take the common locks in the same order; callers take
# tenants in sorted order too, so the whole batch locks in one global order (no deadlock). The consumer's name is
# part of the key: the portfolio and intel consumers write different tables and need not wait for each other.
_GUARD = Prepared(
    "guard_users",
    """SELECT count(pg_advisory_xact_lock(k.t, k.u))
         FROM (SELECT DISTINCT hashtext(CAST(:scope AS text)) AS t, hashtext(u) AS u
                 FROM unnest(CAST(:user_ids AS text[])) AS u ORDER BY 1, 2) AS k""",
)


def guard_users(conn: Connection, consumer: str, tenant_id: str, user_ids: Sequence[str]) -> None:
    """Hold every named user's advisory lock (for this consumer) until the transaction ends."""
    if user_ids:
        _GUARD(conn, {"scope": f"{consumer}/{tenant_id}", "user_ids": list(user_ids)})
