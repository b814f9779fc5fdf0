"""The outbox as Debezium sees it, the inbox as consumers use it, and the idempotency stores."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
from psycopg2 import errors
from psycopg2.extensions import connection as PgConnection

from tools import db

if TYPE_CHECKING:
    from conftest import Tenant

BRIEF_COLUMNS = ["id", "kind", "user_id", "entity_id", "payload", "idempotency_key", "created_at", "processed"]
OUTBOX_INSERT = (
    "INSERT INTO event_outbox (id, kind, user_id, entity_id, payload, idempotency_key, tenant_id) "
    "VALUES (%s, %s, %s, NULL, '{}', %s, %s)"
)


def insert_event(cur, t: Tenant, key: str | None, kind: str = "miner.added") -> None:
    cur.execute(OUTBOX_INSERT, (str(uuid.uuid4()), kind, t.user_id, key, t.tenant_id))


def test_outbox_columns_are_the_briefs_then_ours(admin_conn: PgConnection) -> None:
    with admin_conn.cursor() as cur:
        cur.execute(
            "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
            "WHERE attrelid = 'event_outbox'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        )
        cols = cur.fetchall()
    assert [c[0] for c in cols] == BRIEF_COLUMNS + ["tenant_id", "trace_id", "processed_at", "traceparent"]
    assert cols[:8] == [
        ("id", "text", True),
        ("kind", "text", True),
        ("user_id", "text", True),
        ("entity_id", "text", False),
        ("payload", "jsonb", True),
        ("idempotency_key", "text", False),
        ("created_at", "timestamp with time zone", True),
        ("processed", "boolean", True),
    ]


def test_outbox_indexes(admin_conn: PgConnection) -> None:
    with admin_conn.cursor() as cur:
        cur.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'event_outbox'")
        defs = {r[0].split(" USING btree ")[1] for r in cur.fetchall()}
    # The brief's two, the keys', and the purge's partial index on processed rows (0007).
    assert defs == {
        "(id)", "(idempotency_key)", "(processed, created_at)", "(user_id, created_at)",
        "(processed_at) WHERE processed",
    }


def test_publication_holds_only_the_outbox_inserts(admin_conn: PgConnection) -> None:
    with admin_conn.cursor() as cur:
        cur.execute("SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = 'hashinsight_outbox' "
                    "ORDER BY tablename")
        # The outbox, and the connector's heartbeat table (0008), whose records the connector drops.
        assert cur.fetchall() == [("public", "debezium_heartbeat"), ("public", "event_outbox")]
        cur.execute(
            "SELECT puballtables, pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication "
            "WHERE pubname = 'hashinsight_outbox'"
        )
        assert cur.fetchone() == (False, True, False, False, False)
        cur.execute("SELECT relreplident FROM pg_class WHERE oid = 'event_outbox'::regclass")
        assert cur.fetchone()[0] == "d"


def test_idempotency_key_is_unique(api_conn: PgConnection, tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    key = f"{a.tenant_id}:{a.user_id}:{uuid.uuid4()}"
    with api_conn.cursor() as cur:
        db.set_tenant(cur, a.tenant_id)
        insert_event(cur, a, key)
        with pytest.raises(errors.UniqueViolation, match="event_outbox_idempotency_key_key"):
            insert_event(cur, a, key)
    api_conn.rollback()
    # Global, as the brief specifies, even across tenants: hence keys are namespaced by tenant and user.
    with api_conn.cursor() as cur:
        db.set_tenant(cur, b.tenant_id)
        with pytest.raises(errors.UniqueViolation):
            insert_event(cur, b, f"{a.tenant_id}:seed-key")
    api_conn.rollback()
    with api_conn.cursor() as cur:  # events without a key do not collide
        db.set_tenant(cur, a.tenant_id)
        insert_event(cur, a, None)
        insert_event(cur, a, None)
    api_conn.rollback()


def test_kind_must_name_a_domain(api_conn: PgConnection, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    with api_conn.cursor() as cur:
        db.set_tenant(cur, a.tenant_id)
        with pytest.raises(errors.CheckViolation):
            insert_event(cur, a, None, kind="MinerAdded")
    api_conn.rollback()


def test_inbox_dedupes_on_consumer_and_event(worker_conn: PgConnection, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    event_id = str(uuid.uuid4())
    sql = (
        "INSERT INTO consumer_inbox (consumer_name, event_id, tenant_id, kind, user_id) "
        "VALUES (%s, %s, %s, 'miner.added', %s) ON CONFLICT (consumer_name, event_id) DO NOTHING RETURNING 1"
    )
    with worker_conn.cursor() as cur:
        db.set_tenant(cur, a.tenant_id)
        cur.execute(sql, ("portfolio", event_id, a.tenant_id, a.user_id))
        assert cur.fetchall() == [(1,)]  # first delivery: process it
        cur.execute(sql, ("portfolio", event_id, a.tenant_id, a.user_id))
        assert cur.fetchall() == []  # redelivery: already seen
        cur.execute(sql, ("intel", event_id, a.tenant_id, a.user_id))
        assert cur.fetchall() == [(1,)]  # another consumer has its own mark
        cur.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'consumer_inbox'::regclass AND i.indisprimary "
            "ORDER BY array_position(i.indkey, a.attnum)"
        )
        assert [r[0] for r in cur.fetchall()] == ["consumer_name", "event_id"]
    worker_conn.rollback()


def test_api_idempotency_keys_are_unique_per_user(api_conn: PgConnection, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    with api_conn.cursor() as cur:
        db.set_tenant(cur, a.tenant_id)
        with pytest.raises(errors.UniqueViolation):
            cur.execute(
                "INSERT INTO idempotency_keys (tenant_id, user_id, key, request_hash) VALUES (%s, %s, 'k1', 'other')",
                (a.tenant_id, a.user_id),
            )
    api_conn.rollback()
