"""Pure parts of the request context: request id, W3C trace id, idempotency key, field paths."""

from __future__ import annotations

from collections import deque

from app.entrypoints.http.context import meta_from_scope
from app.entrypoints.http.request_meta import new_id
from app.entrypoints.http.validation import field_path


def _scope(*headers: tuple[bytes, bytes], client=("10.0.0.7", 5555)) -> dict:
    return {"type": "http", "headers": list(headers), "client": client}


def test_incoming_ids_are_kept_when_well_formed() -> None:
    meta = meta_from_scope(_scope(
        (b"x-request-id", b"req-42"),
        (b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        (b"idempotency-key", b"k-1"),
    ))
    assert (meta.request_id, meta.trace_id, meta.source_ip, meta.idempotency_key) == (
        "req-42", "4bf92f3577b34da6a3ce929d0e0e4736", "10.0.0.7", "k-1")


def test_bad_or_missing_ids_are_replaced() -> None:
    meta = meta_from_scope(_scope(
        (b"x-request-id", b"has spaces"),
        (b"traceparent", b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"),  # all-zero: invalid
        client=None,
    ))
    assert meta.request_id != "has spaces" and len(meta.request_id) == 32
    assert len(meta.trace_id) == 32 and meta.trace_id != "0" * 32
    assert meta.source_ip is None and meta.idempotency_key is None
    assert len(meta_from_scope(_scope((b"traceparent", b"garbage"))).trace_id) == 32


def test_new_ids_are_32_hex_digits_and_do_not_repeat(monkeypatch) -> None:
    ids = {new_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(len(i) == 32 and int(i, 16) > 0 for i in ids)
    monkeypatch.setattr("random.getrandbits", lambda bits: 0)  # the one draw a trace id may not be
    assert new_id() == "0" * 31 + "1"


def test_field_paths_read_like_the_contract() -> None:
    assert field_path(deque(["items", 3, "model_id"])) == "items[3].model_id"
    assert field_path(deque(["power_w"])) == "power_w"
    assert field_path(deque()) == "(body)"
