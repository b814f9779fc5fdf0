"""The tamper-evident audit log: `make audit-verify` and `make audit-archive` (docs/security.md).

    python -m tools.audit verify [--tenant T] [--archive FILE ...]
    python -m tools.audit archive --older-than-days N [--out DIR] [--tenant T]

verify walks every tenant's hash chain (migrations/0053) in chain_seq order, from genesis or from the newest
archive checkpoint, recomputing each row's hash from its columns in Python (app/domain/audit_chain.py), and
names the first broken link of each tenant. It prints each chain's head hash: kept elsewhere (a ticket, a
log store), a head makes even a rewrite of the whole chain by the database owner evident. With --archive it
first checks archive files on their own (every row's hash, and the links between them).

archive moves each tenant's rows older than N days to a JSON Lines file (one row per line with its hashes, the
first line a header), fsyncs it, then deletes those rows and records a checkpoint (the last archived row's
chain_seq and row_hash) in one transaction (hashinsight_audit_archive), so the rest of the chain stays
verifiable and the archive verifiable on its own. Exit codes: 0 intact, 1 a broken chain, 2 cannot run.
Connects with ADMIN_DATABASE_URL (the audit table is not readable across tenants otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extras

from app.domain.audit_chain import GENESIS, ChainReport, canonical, row_hash, verify_chain
from tools import db

ARCHIVE_DIR = Path(__file__).resolve().parent.parent / ".stack" / "audit-archive"
_COLUMNS = """id, tenant_id, occurred_at, actor_type, actor_id, action, entity_type, entity_id, request_id,
              trace_id, source_ip, details::text AS details_text, chain_seq, prev_hash, row_hash"""


def _rows(conn: Any, tenant_id: str, after_seq: int = 0, before: datetime | None = None) -> Iterator[dict]:
    # A named (server-side) cursor streams a long chain instead of loading it whole.
    with conn.cursor(name=f"audit_{os.getpid()}", cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.itersize = 5000
        cur.execute(
            f"""SELECT {_COLUMNS} FROM audit_logs
                 WHERE tenant_id = %s AND chain_seq > %s AND (%s::timestamptz IS NULL OR occurred_at < %s)
                 ORDER BY chain_seq""",
            (tenant_id, after_seq, before, before),
        )
        yield from cur


def _tenants(conn: Any, only: str | None) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("""SELECT tenant_id FROM audit_logs GROUP BY tenant_id
                       UNION SELECT tenant_id FROM audit_chain_checkpoints ORDER BY 1""")
        tenants = [r[0] for r in cur.fetchall()]
    return [t for t in tenants if only is None or t == only]


def _checkpoint(conn: Any, tenant_id: str) -> tuple[int, str]:
    with conn.cursor() as cur:
        cur.execute("""SELECT chain_seq, row_hash FROM audit_chain_checkpoints WHERE tenant_id = %s
                       ORDER BY chain_seq DESC LIMIT 1""", (tenant_id,))
        row = cur.fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)


def verify_database(url: str, tenant: str | None = None) -> list[ChainReport]:
    conn = db.connect(url)
    try:
        conn.set_session(readonly=True, isolation_level="REPEATABLE READ")
        reports = []
        for tenant_id in _tenants(conn, tenant):
            seq, start = _checkpoint(conn, tenant_id)
            reports.append(verify_chain(tenant_id, _rows(conn, tenant_id, seq), seq, start))
        conn.rollback()
        return reports
    finally:
        conn.close()


def verify_archive(path: Path) -> ChainReport:
    """An archive file on its own: header, then rows in chain order with their hashes."""
    with path.open() as f:
        header = json.loads(f.readline())
        rows = []
        for line in f:
            row = json.loads(line)
            row["occurred_at"] = datetime.fromisoformat(row["occurred_at"].replace("Z", "+00:00"))
            rows.append(row)
    return verify_chain(header["tenant_id"], rows, header["from_seq"] - 1, header["prev_hash"])


def _print(report: ChainReport, where: str) -> None:
    if report.broken is None:
        print(f"ok      {where} tenant {report.tenant_id}: {report.rows} rows, head chain_seq {report.head_seq} "
              f"hash {report.head_hash}")
    else:
        print(f"BROKEN  {where} {report.broken}")


def cmd_verify(args: argparse.Namespace) -> int:
    broken = 0
    for path in args.archive or []:
        report = verify_archive(Path(path))
        _print(report, f"archive {path}")
        broken += report.broken is not None
    reports = verify_database(db.admin_url(), args.tenant)
    for report in reports:
        _print(report, "audit_logs")
        broken += report.broken is not None
    print(f"audit-verify: {len(reports)} chain(s), {broken} broken")
    return 1 if broken else 0


def archive_tenant(url: str, tenant_id: str, before: datetime, out_dir: Path) -> tuple[int, Path | None]:
    """Archive one tenant's rows older than `before`; returns (rows, file) or (0, None) when there are none."""
    conn = db.connect(url)
    try:
        seq, start = _checkpoint(conn, tenant_id)
        rows = list(_rows(conn, tenant_id, seq, before))
        conn.rollback()
        if not rows:
            return 0, None
        report = verify_chain(tenant_id, rows, seq, start)
        if report.broken is not None:
            raise SystemExit(f"audit-archive: refusing to archive a broken chain: {report.broken}")
        out_dir.mkdir(parents=True, exist_ok=True)
        last = rows[-1]["chain_seq"]
        path = out_dir / f"audit-{tenant_id}-{seq + 1:012d}-{last:012d}.jsonl"
        with path.open("w") as f:
            f.write(json.dumps({"tenant_id": tenant_id, "from_seq": seq + 1, "to_seq": last, "prev_hash": start,
                                "head_hash": report.head_hash, "format": "hashinsight-audit-archive/1"}) + "\n")
            for row in rows:
                assert row_hash(row) == row["row_hash"], canonical(row)
                f.write(json.dumps({**row, "occurred_at": row["occurred_at"].astimezone(timezone.utc).isoformat()},
                                   ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        with conn, conn.cursor() as cur:
            cur.execute("SELECT hashinsight_audit_archive(%s, %s, %s)", (tenant_id, last, str(path)))
            gone = cur.fetchone()[0]
        return gone, path
    finally:
        conn.close()


def cmd_archive(args: argparse.Namespace) -> int:
    before = datetime.now(timezone.utc) - timedelta(days=args.older_than_days)
    conn = db.connect(db.admin_url())
    try:
        tenants = _tenants(conn, args.tenant)
    finally:
        conn.close()
    total = 0
    for tenant_id in tenants:
        gone, path = archive_tenant(db.admin_url(), tenant_id, before, Path(args.out))
        if gone:
            print(f"archived {gone} rows of tenant {tenant_id} to {path}")
            total += gone
    print(f"audit-archive: {total} rows older than {before.isoformat()} archived")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="check every tenant's hash chain")
    v.add_argument("--tenant")
    v.add_argument("--archive", action="append", help="an archive file to check on its own (repeatable)")
    a = sub.add_parser("archive", help="move old rows to JSON Lines files, keeping the chain verifiable")
    a.add_argument("--older-than-days", type=int, required=True)
    a.add_argument("--out", default=str(ARCHIVE_DIR))
    a.add_argument("--tenant")
    args = parser.parse_args(argv)
    try:
        return cmd_verify(args) if args.command == "verify" else cmd_archive(args)
    except psycopg2.Error as exc:
        print(f"audit: {exc}".strip(), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
