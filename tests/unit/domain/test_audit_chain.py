"""The audit chain's canonical form and the walk (the database builds the same text; see the db tests)."""

from __future__ import annotations

from datetime import datetime, timezone

from app.domain.audit_chain import GENESIS, canonical, row_hash, verify_chain


def row(seq: int, prev: str, **over) -> dict:
    r = {"id": seq, "tenant_id": "t1", "occurred_at": datetime(2025, 1, 15, 9, 30, 0, 123456, tzinfo=timezone.utc),
         "actor_type": "user", "actor_id": "u1", "action": "miner.create", "entity_type": "miner",
         "entity_id": "m1", "request_id": None, "trace_id": None, "source_ip": None,
         "details_text": '{"a": "x\\"y"}', "chain_seq": seq, "prev_hash": prev} | over
    r["row_hash"] = row_hash(r)
    return r


def test_the_canonical_form_is_sorted_compact_and_keeps_details_verbatim():
    text = canonical(row(1, GENESIS))
    assert text.startswith('{"action":"miner.create","actor_id":"u1","actor_type":"user","chain_seq":1,')
    assert '"details":{"a": "x\\"y"},' in text and '"occurred_at":"2025-01-15T09:30:00.123456Z"' in text
    assert '"request_id":null' in text and text.endswith('"trace_id":null}')
    assert canonical(row(1, GENESIS, actor_id="ü\n")) .count('"actor_id":"ü\\n"') == 1


def test_a_chain_verifies_and_the_first_broken_link_is_named():
    a = row(1, GENESIS)
    b = row(2, a["row_hash"])
    c = row(3, b["row_hash"])
    assert verify_chain("t1", [a, b, c]).broken is None
    tampered = dict(b, action="miner.delete")
    broken = verify_chain("t1", [a, tampered, c]).broken
    assert broken is not None and broken.chain_seq == 2 and "changed" in broken.reason
    assert verify_chain("t1", [a, c]).broken.chain_seq == 2
    # From an archive checkpoint on.
    assert verify_chain("t1", [c], start_seq=2, start_hash=b["row_hash"]).broken is None
