"""The audit hash chain (migrations/0053, docs/security.md): canonical JSON of a row, its hash, and the walk.

Pure: the verifier (tools/audit.py) fetches rows and hands them here. The canonical form is the one the
database trigger builds: keys sorted, no whitespace, strings JSON-escaped as PostgreSQL's to_json does (which is
json.dumps with ensure_ascii=False for text), `details` as PostgreSQL's jsonb text, occurred_at in UTC with
microseconds. row_hash = hex SHA-256 of its UTF-8 bytes; each row's prev_hash is the previous row's row_hash,
64 zeros before the first row (or the checkpoint's hash once older rows were archived).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

GENESIS = "0" * 64
_STRING_FIELDS = ("action", "actor_id", "actor_type", "entity_id", "entity_type", "prev_hash", "request_id",
                  "source_ip", "tenant_id", "trace_id")


def _string(value: str | None) -> str:
    return "null" if value is None else json.dumps(value, ensure_ascii=False)


def canonical(row: Mapping[str, Any]) -> str:
    """The canonical JSON text of an audit row; `details_text` is the row's details::text."""
    occurred: datetime = row["occurred_at"]
    parts = {
        **{name: _string(row[name]) for name in _STRING_FIELDS},
        "chain_seq": str(row["chain_seq"]),
        "details": row["details_text"] if row["details_text"] is not None else "null",
        "id": str(row["id"]),
        "occurred_at": '"' + occurred.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + '"',
    }
    return "{" + ",".join(f'"{k}":{parts[k]}' for k in sorted(parts)) + "}"


def row_hash(row: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(row).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Break:
    tenant_id: str
    chain_seq: int
    row_id: int | None
    reason: str

    def __str__(self) -> str:
        where = f"row id {self.row_id}" if self.row_id is not None else "no row"
        return f"tenant {self.tenant_id}: first broken link at chain_seq {self.chain_seq} ({where}): {self.reason}"


@dataclass(frozen=True)
class ChainReport:
    tenant_id: str
    rows: int
    head_seq: int
    head_hash: str
    broken: Break | None


def verify_chain(tenant_id: str, rows: Iterable[Mapping[str, Any]], start_seq: int = 0,
                 start_hash: str = GENESIS) -> ChainReport:
    """Walk one tenant's rows in chain_seq order from a starting point (genesis, or an archive checkpoint);
    stops at the first broken link."""
    seq, prev, count = start_seq, start_hash, 0
    for row in rows:
        count += 1
        expected_seq = seq + 1
        if row["chain_seq"] != expected_seq:
            reason = f"chain_seq {row['chain_seq']} follows {seq}: a row is missing or was inserted"
            return ChainReport(tenant_id, count, seq, prev, Break(tenant_id, expected_seq, row["id"], reason))
        if row["prev_hash"] != prev:
            reason = "prev_hash does not name the previous row's hash: a row before it was changed or removed"
            return ChainReport(tenant_id, count, seq, prev, Break(tenant_id, expected_seq, row["id"], reason))
        actual = row_hash(row)
        if actual != row["row_hash"]:
            reason = "row_hash does not match the row's contents: the row was changed after it was written"
            return ChainReport(tenant_id, count, seq, prev, Break(tenant_id, expected_seq, row["id"], reason))
        seq, prev = expected_seq, actual
    return ChainReport(tenant_id, count, seq, prev, None)
