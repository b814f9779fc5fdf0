"""The audit hash chain (migrations/0053): every writer's rows are linked, the verifier recomputes each hash in
Python, a row changed or removed by the database owner is named, and archival keeps the rest verifiable."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timedelta, timezone

import psycopg2
import pytest

from app.domain.audit_chain import GENESIS
from tools import audit, db


def _tenant(test_db) -> str:
    return f"t-audit-{uuid.uuid4().hex[:8]}"


def _append(url: str, tenant: str, n: int, *, details: dict | None = None, occurred_at: datetime | None = None,
            actor: str = "u1") -> None:
    conn = db.connect(url)
    try:
        with conn, conn.cursor() as cur:
            db.set_tenant(cur, tenant)
            for i in range(n):
                cur.execute(
                    """INSERT INTO audit_logs (tenant_id, actor_id, action, entity_type, entity_id, details,
                                               occurred_at)
                       VALUES (%s, %s, 'miner.create', 'miner', %s, %s, COALESCE(%s, now()))""",
                    (tenant, actor, str(uuid.uuid4()), json.dumps(details or {"i": i, "n": 1.5}), occurred_at),
                )
    finally:
        conn.close()


def _report(test_db, tenant: str):
    (report,) = audit.verify_database(test_db.admin, tenant)
    return report


def test_rows_of_every_writer_form_one_verifiable_chain(test_db):
    tenant = _tenant(test_db)
    _append(test_db.api, tenant, 3, details={"label": "Rack \"A\" \\ ünïcode ✓", "tab": "a\tb\nc\u0001",
                                             "nested": {"z": [1, 2.50, None, True], "a": "x"}})
    _append(test_db.worker, tenant, 2, actor="hashinsight.portfolio")  # the worker role cannot even read them
    report = _report(test_db, tenant)
    assert report.broken is None and (report.rows, report.head_seq) == (5, 5)
    with db.connect(test_db.admin, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT chain_seq, prev_hash, row_hash FROM audit_logs WHERE tenant_id = %s ORDER BY chain_seq",
                    (tenant,))
        rows = cur.fetchall()
    assert rows[0][1] == GENESIS
    assert all(rows[i][1] == rows[i - 1][2] for i in range(1, len(rows)))
    assert report.head_hash == rows[-1][2]


def test_concurrent_writers_of_one_tenant_keep_the_chain_gapless(test_db):
    tenant = _tenant(test_db)
    threads = [threading.Thread(target=_append, args=(test_db.api, tenant, 10)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    report = _report(test_db, tenant)
    assert report.broken is None and report.rows == 40 and report.head_seq == 40


def test_the_canonical_form_is_inlined_into_the_plan_that_hashes_it(test_db):
    """0057: planned once per connection with the trigger's expression, not once per transaction on its own."""
    with db.connect(test_db.admin, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("EXPLAIN (VERBOSE, COSTS OFF) SELECT hashinsight_audit_canonical(a) FROM audit_logs a")
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "hashinsight_audit_canonical" not in plan and "to_json(action)" in plan, plan


def _as_owner(test_db, tenant: str, sql: str) -> None:
    """What the database owner can do: switch the append-only trigger off, rewrite, switch it back on."""
    with db.connect(test_db.admin, autocommit=False) as conn, conn.cursor() as cur:
        cur.execute("SET LOCAL ROLE hashinsight_owner")
        db.set_tenant(cur, tenant)
        cur.execute("ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only")
        cur.execute(sql, (tenant,))
        assert cur.rowcount == 1
        cur.execute("ALTER TABLE audit_logs ENABLE TRIGGER audit_logs_append_only")
        conn.commit()


def test_a_row_the_owner_changes_is_named_as_the_first_broken_link(test_db, monkeypatch, capsys):
    tenant = _tenant(test_db)
    _append(test_db.api, tenant, 5)
    _as_owner(test_db, tenant, """UPDATE audit_logs SET details = '{"i": 99}' WHERE tenant_id = %s AND chain_seq = 3""")
    report = _report(test_db, tenant)
    assert report.broken is not None and report.broken.chain_seq == 3
    assert "changed after it was written" in report.broken.reason
    # `make audit-verify` (tools.audit verify) fails and names the link.
    monkeypatch.setenv("ADMIN_DATABASE_URL", test_db.admin)
    assert audit.main(["verify", "--tenant", tenant]) == 1
    out = capsys.readouterr().out
    assert f"BROKEN  audit_logs tenant {tenant}: first broken link at chain_seq 3" in out


def test_a_row_the_owner_deletes_breaks_the_chain_there(test_db):
    tenant = _tenant(test_db)
    _append(test_db.api, tenant, 4)
    _as_owner(test_db, tenant, "DELETE FROM audit_logs WHERE tenant_id = %s AND chain_seq = 2")
    broken = _report(test_db, tenant).broken
    assert broken is not None and broken.chain_seq == 2 and "missing" in broken.reason


def test_the_application_roles_still_cannot_change_rows(test_db):
    tenant = _tenant(test_db)
    _append(test_db.api, tenant, 1)
    conn = db.connect(test_db.api)
    try:
        with pytest.raises(psycopg2.Error), conn, conn.cursor() as cur:
            db.set_tenant(cur, tenant)
            cur.execute("DELETE FROM audit_logs WHERE tenant_id = %s", (tenant,))
    finally:
        conn.close()


def test_archival_moves_old_rows_out_and_keeps_both_parts_verifiable(test_db, tmp_path):
    tenant = _tenant(test_db)
    _append(test_db.api, tenant, 3, occurred_at=datetime.now(timezone.utc) - timedelta(days=400))
    _append(test_db.api, tenant, 2)
    gone, path = audit.archive_tenant(test_db.admin, tenant, datetime.now(timezone.utc) - timedelta(days=365),
                                      tmp_path)
    assert gone == 3 and path is not None
    archived = audit.verify_archive(path)
    assert archived.broken is None and (archived.rows, archived.head_seq) == (3, 3)
    rest = _report(test_db, tenant)
    assert rest.broken is None and rest.rows == 2 and rest.head_seq == 5
    # New rows continue the chain after the checkpoint, even once every row is archived.
    gone, _ = audit.archive_tenant(test_db.admin, tenant, datetime.now(timezone.utc) + timedelta(days=1), tmp_path)
    assert gone == 2
    _append(test_db.api, tenant, 1)
    after = _report(test_db, tenant)
    assert after.broken is None and after.head_seq == 6
    # An archive file edited afterwards no longer verifies.
    lines = path.read_text().splitlines()
    row = json.loads(lines[2])
    row["action"] = "miner.delete"
    path.write_text("\n".join([lines[0], lines[1], json.dumps(row), *lines[3:]]) + "\n")
    assert audit.verify_archive(path).broken.chain_seq == 2
