"""Idempotency-Key: replay, mismatch, scoping, and racing duplicates (exactly one write)."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from starlette.testclient import TestClient

BODY = {"model_id": "antminer-s21", "label": "idem"}


def _counts(admin_db, user) -> tuple[int, int, int]:
    return (
        admin_db.one("SELECT count(*) FROM miners WHERE tenant_id = %s", user.tenant_id),
        admin_db.one("SELECT count(*) FROM event_outbox WHERE user_id = %s", user.user_id),
        admin_db.one("SELECT count(*) FROM audit_logs WHERE tenant_id = %s", user.tenant_id),
    )


def test_repeated_key_replays_the_first_response_and_writes_nothing(client, user, admin_db):
    key = str(uuid.uuid4())
    first = client.post("/api/miners", json=BODY, headers=user.headers(idempotency_key=key))
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    second = client.post("/api/miners", json=BODY, headers=user.headers(idempotency_key=key))
    assert second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert second.headers["Location"] == first.headers["Location"]
    assert _counts(admin_db, user) == (1, 1, 1)
    outbox_key = admin_db.one("SELECT idempotency_key FROM event_outbox WHERE user_id = %s", user.user_id)
    prefix = f"{user.tenant_id}:{user.user_id}:{key}:miner.added:"
    assert outbox_key.startswith(prefix) and outbox_key[len(prefix):].isdigit()  # tagged with the claim's time
    status, response = admin_db.one(
        "SELECT status_code, response FROM idempotency_keys WHERE tenant_id = %s AND key = %s", user.tenant_id, key)
    assert status == 201 and response["body"] == first.json()


def test_same_key_different_body_is_409(client, user, admin_db):
    key = str(uuid.uuid4())
    assert client.post("/api/miners", json=BODY, headers=user.headers(idempotency_key=key)).status_code == 201
    r = client.post("/api/miners", json={**BODY, "label": "other"}, headers=user.headers(idempotency_key=key))
    assert r.status_code == 409
    assert r.json()["type"] == "urn:hashinsight:problem:idempotency-key-reused"
    # ... and on another operation too (keys are global per user).
    r = client.post("/api/treasury/execute", json={"side": "buy", "amount_btc": 0.1},
                    headers=user.headers(idempotency_key=key))
    assert r.status_code == 409
    assert _counts(admin_db, user) == (1, 1, 1)


def test_keys_are_per_user(client, user, make_user, admin_db):
    key = str(uuid.uuid4())
    other = make_user(tenant_id=user.tenant_id)
    a = client.post("/api/miners", json=BODY, headers=user.headers(idempotency_key=key))
    b = client.post("/api/miners", json=BODY, headers=other.headers(idempotency_key=key))
    assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]
    assert "Idempotent-Replayed" not in b.headers


def test_failed_write_is_not_cached(client, user):
    key = str(uuid.uuid4())
    bad = {"model_id": "antminer-s99"}
    assert client.post("/api/miners", json=bad, headers=user.headers(idempotency_key=key)).status_code == 422
    # the claim rolled back with the failed write: the key is free for the corrected retry
    assert client.post("/api/miners", json=BODY, headers=user.headers(idempotency_key=key)).status_code == 201


def test_status_change_and_trade_and_bulk_replay(client, user, admin_db):
    miner = client.post("/api/miners", json=BODY, headers=user.headers()).json()
    url = f"/api/miners/{miner['id']}/status"
    key = str(uuid.uuid4())
    a = client.patch(url, json={"status": "idle"}, headers=user.headers(idempotency_key=key))
    b = client.patch(url, json={"status": "idle"}, headers=user.headers(idempotency_key=key))
    assert (a.status_code, b.status_code, b.headers.get("Idempotent-Replayed")) == (200, 200, "true")
    assert client.patch(url, json={"status": "idle"}, headers=user.headers()).status_code == 409  # no key: 409

    key = str(uuid.uuid4())
    trade = {"side": "sell", "amount_btc": 0.01}
    a = client.post("/api/treasury/execute", json=trade, headers=user.headers(idempotency_key=key))
    b = client.post("/api/treasury/execute", json=trade, headers=user.headers(idempotency_key=key))
    assert (a.status_code, b.status_code) == (201, 201) and a.json() == b.json()

    key = str(uuid.uuid4())
    bulk = {"items": [{"model_id": "antminer-s19-pro"}] * 3}
    a = client.post("/api/miners/bulk", json=bulk, headers=user.headers(idempotency_key=key))
    b = client.post("/api/miners/bulk", json=bulk, headers=user.headers(idempotency_key=key))
    assert (a.status_code, b.status_code) == (201, 201) and a.json() == b.json()
    kinds = sorted(k for (k,) in admin_db.all("SELECT kind FROM event_outbox WHERE user_id = %s", user.user_id))
    assert kinds == ["miner.added", "miner.bulk_imported", "miner.status_changed", "treasury.trade_executed"]
    assert admin_db.one("SELECT count(*) FROM trades WHERE user_id = %s", user.user_id) == 1


def test_racing_duplicates_in_process_write_exactly_once(unlimited_app, user, admin_db):
    """N threads send the same keyed request at the same instant: one write, N identical answers."""
    key = str(uuid.uuid4())
    n = 8
    barrier = threading.Barrier(n)
    # provision the user first so the race is about the key, not the users row
    with TestClient(unlimited_app) as c:
        assert c.get("/api/miners", headers=user.headers()).status_code == 200

    def send(_: int):
        with TestClient(unlimited_app, raise_server_exceptions=False) as c:
            barrier.wait()
            return c.post("/api/miners", json=BODY, headers=user.headers(idempotency_key=key))

    with ThreadPoolExecutor(n) as pool:
        responses = list(pool.map(send, range(n)))
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == n - 1
    assert _counts(admin_db, user) == (1, 1, 1)


def test_racing_duplicates_over_http_across_worker_processes(server, user, admin_db):
    """The same race against the real server (uvicorn, 2 worker processes): still exactly one write."""
    key = str(uuid.uuid4())
    n = 12
    barrier = threading.Barrier(n)
    headers = user.headers(idempotency_key=key)

    def send(_: int) -> httpx.Response:
        with httpx.Client(base_url=server.base_url, timeout=30) as c:
            barrier.wait()
            return c.post("/api/miners/bulk", json={"items": [{"model_id": "antminer-s21"}] * 50}, headers=headers)

    with ThreadPoolExecutor(n) as pool:
        responses = list(pool.map(send, range(n)))
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    assert len({r.json()["batch_id"] for r in responses}) == 1
    assert admin_db.one("SELECT count(*) FROM miners WHERE tenant_id = %s", user.tenant_id) == 50
    assert admin_db.one("SELECT count(*) FROM event_outbox WHERE user_id = %s", user.user_id) == 1


def _age_key(admin_db, user, key: str, hours: int) -> None:
    admin_db.execute("UPDATE idempotency_keys SET created_at = now() - make_interval(hours => %s)"
                     " WHERE tenant_id = %s AND key = %s", hours, user.tenant_id, key)


def test_a_key_past_its_retention_is_a_new_request_whether_or_not_it_was_purged(client, user, admin_db):
    """24 h by default (IDEMPOTENCY_RETENTION_HOURS). The outbox keeps its rows for 72 h, and its UNIQUE
    idempotency_key used to answer the reused key with a 500; now each claim tags the outbox key."""
    key = str(uuid.uuid4())
    first = client.post("/api/miners", json=BODY, headers=user.headers(idempotency_key=key))
    assert first.status_code == 201
    # Not purged yet: the row is still there, only old.
    _age_key(admin_db, user, key, 25)
    second = client.post("/api/miners", json=BODY, headers=user.headers(idempotency_key=key))
    assert second.status_code == 201, second.text
    assert "Idempotent-Replayed" not in second.headers and second.json()["id"] != first.json()["id"]
    # Purged: the row is gone.
    _age_key(admin_db, user, key, 25)
    admin_db.execute("DELETE FROM idempotency_keys WHERE tenant_id = %s AND key = %s", user.tenant_id, key)
    third = client.post("/api/miners", json={**BODY, "label": "another body"},
                        headers=user.headers(idempotency_key=key))
    assert third.status_code == 201, third.text
    assert "Idempotent-Replayed" not in third.headers
    assert _counts(admin_db, user) == (3, 3, 3)
    assert len(set(r[0] for r in admin_db.all(
        "SELECT idempotency_key FROM event_outbox WHERE user_id = %s", user.user_id))) == 3
    # And within the window the newest claim replays as before.
    fourth = client.post("/api/miners", json={**BODY, "label": "another body"},
                         headers=user.headers(idempotency_key=key))
    assert fourth.headers["Idempotent-Replayed"] == "true" and fourth.json() == third.json()


def test_a_fresh_key_with_a_different_request_is_still_a_conflict(client, user):
    key = str(uuid.uuid4())
    assert client.post("/api/miners", json=BODY, headers=user.headers(idempotency_key=key)).status_code == 201
    r = client.post("/api/miners/bulk", json={"items": [BODY]}, headers=user.headers(idempotency_key=key))
    assert r.status_code == 409  # within the window: the key belongs to the first request
