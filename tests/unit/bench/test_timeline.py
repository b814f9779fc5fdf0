"""The bench's per-second timeline: autovacuum's targets read from pg_stat_activity, writes and cores binned by
second, and the worst seconds picked by refusals first, then latency."""

from __future__ import annotations

from dataclasses import dataclass

from tools.bench.timeline import autovacuum_target, build, describe, summarize, worst_seconds


@dataclass
class _Write:
    t_send: float
    status: int | None = 201
    t_ack: float | None = None
    t_visible: float | None = None


def test_autovacuum_targets_are_read_from_the_workers_query_text() -> None:
    assert autovacuum_target("autovacuum: VACUUM ANALYZE public.event_outbox") == "VACUUM ANALYZE event_outbox"
    assert autovacuum_target("autovacuum: ANALYZE public.users") == "ANALYZE users"
    assert autovacuum_target("autovacuum: VACUUM public.forecast_p20261206 (to prevent wraparound)") == \
        "VACUUM forecast_p20261206"
    assert autovacuum_target("SELECT 1") is None and autovacuum_target(None) is None


def test_activity_counts_active_sessions_waiting_on_a_lock_or_the_wal_and_names_autovacuum_work() -> None:
    rows = [
        ("autovacuum worker", None, None, "active", "autovacuum: ANALYZE public.audit_logs"),
        ("client backend", "Lock", "advisory", "active", "SELECT pg_advisory_xact_lock(1)"),
        ("client backend", "Lock", "transactionid", "active", "UPDATE miners ..."),
        ("client backend", "LWLock", "WALWrite", "active", "COMMIT"),
        ("client backend", "IO", "WALSync", "active", "COMMIT"),
        ("client backend", "Client", "ClientRead", "idle", "COMMIT"),
        ("walsender", "Activity", "WalSenderWaitForWAL", "active", "START_REPLICATION"),
    ]
    assert summarize(rows) == (["ANALYZE audit_logs"], 2, 2)


def test_writes_and_cores_land_in_the_second_they_belong_to() -> None:
    writes = [
        _Write(100.0, t_ack=100.01, t_visible=100.1),
        _Write(100.5, t_ack=100.52, t_visible=100.9),
        _Write(101.2, status=503, t_ack=101.3),
        _Write(101.4, status=-1),
        _Write(102.0, t_ack=102.2, t_visible=105.2),
    ]
    cpu = [(100.0, {"web": 0.0, "postgres:background": 0.0}), (101.0, {"web": 0.5, "postgres:background": 0.0}),
           (102.0, {"web": 1.0, "postgres:background": 1.0}), (103.0, {"web": 1.2, "postgres:background": 1.0})]
    pg = [(101.5, ["ANALYZE users"], 3, 1), (101.9, [], 5, 0)]
    rows = build(writes, cpu, pg)
    assert [r["t"] for r in rows] == [0, 1, 2, 3]
    assert [r["sent"] for r in rows] == [2, 2, 1, 0]
    assert [r["refused"] for r in rows] == [0, 2, 0, 0]
    assert rows[0]["total_p95_ms"] == 380.0 and rows[2]["total_p95_ms"] == 3000.0 and rows[1]["total_p95_ms"] is None
    assert rows[0]["cores"] == {"web": 0.5}
    assert rows[1]["cores"] == {"postgres:background": 1.0, "web": 0.5}
    assert rows[1]["autovacuum"] == ["ANALYZE users"] and rows[1]["lock_waits"] == 5 and rows[1]["wal_waits"] == 1
    worst = worst_seconds(rows, 2)
    assert [r["t"] for r in worst] == [1, 2]
    assert "2 refused" in describe(worst[0]) and "autovacuum: ANALYZE users" in describe(worst[0])


def test_no_writes_no_timeline() -> None:
    assert build([], [(1.0, {})], []) == []
