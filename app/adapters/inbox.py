"""consumer_inbox: the idempotent consumer's "already applied" marks, written in the effect's transaction."""

from __future__ import annotations

from sqlalchemy import Connection, text

_CLAIM = """INSERT INTO consumer_inbox (consumer_name, event_id, tenant_id, kind, user_id)
            VALUES (:c, :e, :t, :k, :u)
            ON CONFLICT (consumer_name, event_id) DO NOTHING
            RETURNING 1"""

# A replay that bypasses the inbox still leaves one mark per event, stamped with the replay's time.
_RECLAIM = """INSERT INTO consumer_inbox (consumer_name, event_id, tenant_id, kind, user_id)
              VALUES (:c, :e, :t, :k, :u)
              ON CONFLICT (consumer_name, event_id) DO UPDATE SET processed_at = now()
              RETURNING 1"""


def claim(
    conn: Connection, consumer: str, event_id: str, tenant_id: str, kind: str, user_id: str, *, force: bool = False
) -> bool:
    """True when the event is new for this consumer (always, with force); False when already applied."""
    row = conn.execute(
        text(_RECLAIM if force else _CLAIM),
        {"c": consumer, "e": event_id, "t": tenant_id, "k": kind, "u": user_id},
    ).first()
    return row is not None
