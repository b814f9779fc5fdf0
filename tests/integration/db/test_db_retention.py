"""Partitions made ahead and dropped past retention by pg_partman; the bounded tables purged past their windows;
pg_cron running both on the stack's database (migration 0030)."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import yaml
from psycopg2.extensions import connection as PgConnection

from tools import db

ASYNCAPI = Path(__file__).resolve().parents[3] / "contracts" / "asyncapi.yaml"
TABLES = {"network_snapshots": "365 days", "miner_telemetry": "120 days", "forecast_daily": "30 days"}


def _today() -> date:
    return datetime.now(timezone.utc).date()


def _children(cur, table: str) -> set[str]:
    cur.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = %s::regclass", (table,))
    return {r[0] for r in cur.fetchall()}


def test_pg_partman_manages_the_three_tables(admin_conn: PgConnection) -> None:
    with admin_conn.cursor() as cur:
        cur.execute("SELECT parent_table, premake, retention, retention_keep_table, infinite_time_partitions"
                    " FROM partman.part_config ORDER BY 1")
        rows = {r[0].removeprefix("public."): r[1:] for r in cur.fetchall()}
    assert rows == {t: (45, keep, False, True) for t, keep in TABLES.items()}


def test_maintenance_makes_partitions_ahead_and_drops_them_past_retention(admin_conn: PgConnection) -> None:
    today = _today()
    ahead = f"miner_telemetry_p{today + timedelta(days=45):%Y_%m_%d}"
    old = today - timedelta(days=200)  # past miner_telemetry's 120 days
    with admin_conn.cursor() as cur:
        # As if the calendar had moved on since the last run: the newest partitions are not there yet.
        for name in sorted(_children(cur, "miner_telemetry")):
            if name[-10:].replace("_", "").isdigit() and name[-10:] > f"{today + timedelta(days=40):%Y_%m_%d}":
                cur.execute(f"DROP TABLE {name}")
        assert ahead not in _children(cur, "miner_telemetry")
        cur.execute("SET LOCAL ROLE hashinsight_owner")  # as the maintenance makes them: owned by the owner
        cur.execute("SELECT partman.create_partition_time('public.miner_telemetry', ARRAY[%s::timestamptz], false)",
                    (old.isoformat(),))
        cur.execute("RESET ROLE")
        assert f"miner_telemetry_p{old:%Y_%m_%d}" in _children(cur, "miner_telemetry")
        cur.execute("SELECT hashinsight_partition_maintenance()")
        children = _children(cur, "miner_telemetry")
        assert ahead in children  # made ahead again
        assert f"miner_telemetry_p{old:%Y_%m_%d}" not in children  # dropped past retention
        cur.execute("SELECT to_regclass(%s)", (f"miner_telemetry_p{old:%Y_%m_%d}",))
        assert cur.fetchone()[0] is None  # dropped, not only detached
        cur.execute("SELECT relowner::regrole::text FROM pg_class WHERE relname = %s", (ahead,))
        assert cur.fetchone()[0] == "hashinsight_owner"
        cur.execute("SELECT count(*) FROM pg_class WHERE relname = 'miner_telemetry_default'")
        assert cur.fetchone()[0] == 1
    admin_conn.rollback()


def test_expired_rows_are_purged_and_fresh_ones_kept(admin_conn: PgConnection, tenants) -> None:
    a, _ = tenants
    with admin_conn.cursor() as cur:
        cur.execute("""INSERT INTO event_outbox (id, kind, user_id, payload, tenant_id, processed, processed_at)
                       VALUES ('purge-old', 'miner.added', %(u)s, '{}', %(t)s, true, now() - interval '73 hours'),
                              ('purge-new', 'miner.added', %(u)s, '{}', %(t)s, true, now() - interval '1 hour'),
                              ('purge-unprocessed', 'miner.added', %(u)s, '{}', %(t)s, false, NULL)""",
                    {"u": a.user_id, "t": a.tenant_id})
        cur.execute("""INSERT INTO idempotency_keys (tenant_id, user_id, key, request_hash, status_code, created_at)
                       VALUES (%(t)s, %(u)s, 'purge-old', 'h', 201, now() - interval '25 hours'),
                              (%(t)s, %(u)s, 'purge-new', 'h', 201, now())""", {"u": a.user_id, "t": a.tenant_id})
        cur.execute("""INSERT INTO consumer_inbox (consumer_name, event_id, tenant_id, processed_at)
                       VALUES ('purge-test', 'old', %(t)s, now() - interval '15 days'),
                              ('purge-test', 'within-replay', %(t)s, now() - interval '8 days')""",
                    {"t": a.tenant_id})
        cur.execute("SELECT name, purged FROM hashinsight_purge_expired() ORDER BY 1")
        purged = dict(cur.fetchall())
        assert purged["event_outbox"] >= 1 and purged["idempotency_keys"] >= 1 and purged["consumer_inbox"] >= 1
        cur.execute("SELECT id FROM event_outbox WHERE id LIKE 'purge-%' ORDER BY 1")
        assert [r[0] for r in cur.fetchall()] == ["purge-new", "purge-unprocessed"]
        cur.execute("SELECT key FROM idempotency_keys WHERE key LIKE 'purge-%'")
        assert [r[0] for r in cur.fetchall()] == ["purge-new"]
        cur.execute("SELECT event_id FROM consumer_inbox WHERE consumer_name = 'purge-test'")
        assert [r[0] for r in cur.fetchall()] == ["within-replay"]
    admin_conn.rollback()


def _longest_replay_window() -> timedelta:
    doc = yaml.safe_load(ASYNCAPI.read_text())
    windows = []
    for channel in doc["channels"].values():
        kafka = channel["bindings"]["kafka"]
        if kafka["topic"] != "events.dlq":
            windows.append(int(kafka["topicConfiguration"]["retention.ms"]))
    return timedelta(milliseconds=max(windows))


def test_the_inbox_outlives_the_longest_replay_window(admin_conn: PgConnection) -> None:
    with admin_conn.cursor() as cur:
        cur.execute("SELECT keep FROM hashinsight_retention WHERE name = 'consumer_inbox'")
        keep = cur.fetchone()[0]
    replay = _longest_replay_window()
    assert replay == timedelta(days=7)
    assert keep > replay, (keep, replay)


def test_pg_cron_runs_the_jobs_on_the_stacks_database() -> None:
    """The stack's own database (cron.database_name); the throwaway ones have no scheduler by design."""
    conn = db.connect(db.admin_url(), autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT jobname, schedule, command, active FROM cron.job WHERE jobname LIKE 'hashinsight-%'"
                        " ORDER BY 1")
            assert cur.fetchall() == [
                ("hashinsight-partitions", "7 * * * *", "SELECT hashinsight_partition_maintenance()", True),
                ("hashinsight-purge-expired", "* * * * *", "SELECT count(*) FROM hashinsight_purge_expired()", True),
            ]
            started = datetime.now(timezone.utc)
            deadline = time.monotonic() + 75  # the purge runs every minute
            while True:
                cur.execute("""SELECT d.status, d.return_message FROM cron.job_run_details d
                                 JOIN cron.job j USING (jobid)
                                WHERE j.jobname = 'hashinsight-purge-expired' AND d.start_time >= %s
                                ORDER BY d.start_time DESC LIMIT 1""", (started - timedelta(seconds=61),))
                row = cur.fetchone()
                if row is not None and row[0] in ("succeeded", "failed"):
                    break
                assert time.monotonic() < deadline, "pg_cron ran no purge within a minute"
                time.sleep(2)
            assert row[0] == "succeeded", row
            # The partition job's command works on this database too (run here rather than waiting an hour).
            cur.execute("SELECT hashinsight_partition_maintenance()")
            cur.execute("SELECT to_regclass(%s)", (f"network_snapshots_p{_today() + timedelta(days=45):%Y_%m_%d}",))
            assert cur.fetchone()[0] is not None
    finally:
        conn.close()
