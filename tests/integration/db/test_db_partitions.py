"""Daily partitions (pg_partman since 0030): rows land in the right day, out-of-range rows in DEFAULT, the window
function moves them out."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest
from psycopg2 import errors
from psycopg2.extensions import connection as PgConnection

from tools import db

if TYPE_CHECKING:
    from conftest import Tenant

PARTITIONED = {"network_snapshots": "ts", "miner_telemetry": "ts", "forecast_daily": "day"}


def utc_today() -> date:
    return datetime.now(timezone.utc).date()


def part(table: str, day: date) -> str:
    return f"{table}_p{day:%Y_%m_%d}"  # pg_partman's daily naming


def insert_snapshot(cur, ts: datetime | str) -> str:
    cur.execute(
        "INSERT INTO network_snapshots (ts, btc_price_usd, difficulty, network_hashrate_ehs, "
        "block_reward_btc, source) VALUES (%s, 80000, 1e14, 700, 3.125, 'test') "
        # The seed's hourly snapshots may hold these very instants (midnight is the point of the test): the row
        # that has the instant, new or not, says which partition holds it. Rolled back by the caller.
        "ON CONFLICT (ts) DO UPDATE SET source = EXCLUDED.source RETURNING tableoid::regclass::text",
        (ts,),
    )
    return cur.fetchone()[0]


def test_tables_are_partitioned_by_day_with_a_default(admin_conn: PgConnection) -> None:
    today = utc_today()
    with admin_conn.cursor() as cur:
        for table, column in PARTITIONED.items():
            cur.execute("SELECT pg_get_partkeydef(%s::regclass)", (table,))
            assert cur.fetchone()[0] == f"RANGE ({column})"
            cur.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = %s::regclass",
                (table,),
            )
            children = {r[0] for r in cur.fetchall()}
            assert f"{table}_default" in children
            # the window make migrate keeps: 120 days back (the seed needs 90), 45 ahead (forecasts 30+); forecasts
            # keep only 30 days back (pg_partman's retention drops older days)
            back = (-30,) if table == "forecast_daily" else (-120, -90)
            for offset in (*back, 0, 30, 45):
                assert part(table, today + timedelta(days=offset)) in children, (table, offset)
            if table == "forecast_daily":
                assert part(table, today - timedelta(days=31)) not in children


def test_rows_land_in_their_utc_day(admin_conn: PgConnection) -> None:
    today = utc_today()
    midnight = datetime(today.year, today.month, today.day, tzinfo=timezone.utc)
    with admin_conn.cursor() as cur:
        # Bounds are UTC midnights whatever the session's time zone.
        cur.execute("SET TIME ZONE 'Pacific/Auckland'")
        assert insert_snapshot(cur, midnight) == part("network_snapshots", today)
        assert insert_snapshot(cur, midnight - timedelta(microseconds=1)) == part(
            "network_snapshots", today - timedelta(days=1)
        )
        assert insert_snapshot(cur, midnight + timedelta(hours=23, minutes=59, seconds=59)) == part(
            "network_snapshots", today
        )
        assert insert_snapshot(cur, midnight - timedelta(days=89, hours=5)) == part(
            "network_snapshots", today - timedelta(days=90)
        )
    admin_conn.rollback()


def test_tenant_rows_land_in_their_day(
    worker_conn: PgConnection, admin_conn: PgConnection, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    today = utc_today()
    with worker_conn.cursor() as cur:  # the intel consumer's write path, under RLS
        db.set_tenant(cur, a.tenant_id)
        cur.execute(
            "INSERT INTO forecast_daily (tenant_id, user_id, day, revenue_usd) VALUES (%s, %s, %s, 1) "
            "RETURNING tableoid::regclass::text",
            (a.tenant_id, a.user_id, today + timedelta(days=30)),
        )
        assert cur.fetchone()[0] == part("forecast_daily", today + timedelta(days=30))
    worker_conn.rollback()
    with admin_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO miner_telemetry (tenant_id, miner_id, ts, hashrate_ths, power_w) "
            "VALUES (%s, %s, now() - interval '3 days', 100, 3000) RETURNING tableoid::regclass::text",
            (a.tenant_id, a.miner_id),
        )
        assert cur.fetchone()[0] == part("miner_telemetry", today - timedelta(days=3))
    admin_conn.rollback()


def test_out_of_range_rows_go_to_default_and_maintenance_moves_them(admin_conn: PgConnection) -> None:
    today = utc_today()
    later = today + timedelta(days=50)  # beyond the 45 days pg_partman keeps ahead
    with admin_conn.cursor() as cur:
        far = insert_snapshot(cur, "2100-01-01T00:00:00Z")
        assert far == "network_snapshots_default"
        assert insert_snapshot(cur, f"{later}T12:00:00Z") == "network_snapshots_default"
        children = "SELECT count(*) FROM pg_inherits WHERE inhparent = ANY(%s::regclass[])"
        cur.execute(children, (list(PARTITIONED),))
        before = cur.fetchone()[0]
        cur.execute("SELECT hashinsight_ensure_partitions(0, 50)")
        created = cur.fetchone()[0]
        cur.execute(children, (list(PARTITIONED),))
        # the days up to 50 ahead that pg_partman had not made yet (it keeps 45), and the far row's own day
        assert created == cur.fetchone()[0] - before and created >= 3 + 1
        cur.execute("SELECT tableoid::regclass::text FROM network_snapshots WHERE source = 'test' ORDER BY ts")
        assert [r[0] for r in cur.fetchall()] == [part("network_snapshots", later), "network_snapshots_p2100_01_01"]
        cur.execute("SELECT count(*) FROM network_snapshots_default")
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT hashinsight_ensure_partitions(0, 50)")
        assert cur.fetchone()[0] == 0  # idempotent
        cur.execute(
            "SELECT relowner::regrole::text FROM pg_class WHERE relname = %s", (part("network_snapshots", later),)
        )
        assert cur.fetchone()[0] == "hashinsight_owner"  # SECURITY DEFINER: owned like the rest
    admin_conn.rollback()  # the new partitions go too: DDL is transactional


def test_partition_maintenance_is_for_the_worker_not_the_api(api_conn: PgConnection, worker_conn: PgConnection) -> None:
    with worker_conn.cursor() as cur:
        cur.execute("SELECT hashinsight_ensure_partitions(1, 45)")
        assert cur.fetchone()[0] == 0
    worker_conn.rollback()
    with api_conn.cursor() as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("SELECT hashinsight_ensure_partitions(1, 45)")
    api_conn.rollback()


def test_app_roles_cannot_touch_partitions_directly(api_conn: PgConnection) -> None:
    """RLS lives on the parent: a partition read directly would bypass it, so nobody but the owner may."""
    with api_conn.cursor() as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(f"SELECT * FROM {part('miner_telemetry', utc_today())}")
    api_conn.rollback()


def forecast_partitions_without_autoanalyze_setting(cur) -> list[str]:
    cur.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'forecast_daily'::regclass "
        "AND NOT coalesce('autovacuum_analyze_scale_factor=2' = ANY(c.reloptions), false)"
    )
    return [r[0] for r in cur.fetchall()]


def test_forecast_partitions_are_analyzed_by_row_count_not_by_refresh(admin_conn: PgConnection) -> None:
    # Every refresh rewrites a user's row in 30 partitions in place (0056): at autovacuum's default each of them
    # was analyzed about once a minute under load, for statistics nobody reads.
    today = utc_today()
    far = today + timedelta(days=50)  # beyond the 45 days pg_partman keeps ahead: made by the call below
    with admin_conn.cursor() as cur:
        assert forecast_partitions_without_autoanalyze_setting(cur) == []
        cur.execute("SELECT hashinsight_ensure_partitions(0, 50)")
        cur.execute("SELECT reloptions FROM pg_class WHERE relname = %s", (part("forecast_daily", far),))
        assert cur.fetchone()[0] == ["autovacuum_analyze_scale_factor=2"]  # from pg_partman's template
        assert forecast_partitions_without_autoanalyze_setting(cur) == []
        cur.execute("SELECT reloptions FROM pg_class WHERE relname = %s", (part("miner_telemetry", far),))
        assert cur.fetchone()[0] is None  # appended rows: autovacuum's default suits them
    admin_conn.rollback()
