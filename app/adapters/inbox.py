"""consumer_inbox: the idempotent consumer's "already applied" marks, written in the effect's transaction."""

from __future__ import annotations

from sqlalchemy import Connection, text

_CLAIM = """INSERT INTO consumer_inbox (consumer_name, event_id, tenant_id, kind, user_id)
            VALUES (:c, :e, :t, :k, :u)
            ON CONFLICT (consumer_name, event_id) DO NOTHING
            RETURNING 1"""

def claim(
    conn: Connection, consumer: str, event_id: str, tenant_id: str, kind: str, user_id: str, *, force: bool = False
) -> bool:
    """True when the event is new for this consumer (always, with force); False when already applied.

    force (a replay that bypasses the inbox) replaces the old mark with a new one, stamped with this time.
    """
    if force:
        conn.execute(
            text("DELETE FROM consumer_inbox WHERE consumer_name = :c AND event_id = :e"),
            {"c": consumer, "e": event_id},
        )
    row = conn.execute(
        text(_CLAIM),
        {"c": consumer, "e": event_id, "t": tenant_id, "k": kind, "u": user_id},
    ).first()
    return row is not None
