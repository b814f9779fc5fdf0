"""`make rotate-master-key` while the API serves: a new active master key, every data key re-wrapped under it,
ciphertexts untouched, and no request fails meanwhile.

It rotates the system's own key file (the one `make rotate-master-key` rotates) without retiring the old key,
so the stack's other databases, whose records it does not re-wrap, keep opening.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

from app.adapters.kms import get_kms, read_key_file
from app.service_layer import secrets
from tools import rotate_master_key

POOL = "stratum+tcp://btc.pool.example:3333"


def test_rotation_rewraps_every_data_key_while_requests_keep_succeeding(unlimited_client, user, admin_db):
    headers = user.headers()
    passwords = {}
    for i in range(5):
        pw = f"rotate-{i}-{uuid.uuid4().hex}"
        resp = unlimited_client.post("/api/miners", headers=headers, json={
            "model_id": "antminer-s21", "pool": {"url": POOL, "worker": f"w{i}", "password": pw}})
        assert resp.status_code == 201, resp.text
        passwords[resp.json()["id"]] = pw
    put = unlimited_client.put("/api/treasury/credentials", headers=headers,
                               json={"exchange": "paper", "api_key": "k" * 20, "api_secret": "s" * 30})
    assert put.status_code == 200
    before = dict(admin_db.all("SELECT miner_id::text, ciphertext FROM miner_pools WHERE tenant_id = %s",
                               user.tenant_id))
    old_key = put.json()["master_key_id"]

    statuses: list[int] = []
    stop = threading.Event()

    def serve() -> None:  # trades unseal the exchange key; new pools seal with whatever key is active
        while not stop.is_set():
            statuses.append(unlimited_client.post("/api/treasury/execute", headers=headers,
                                                  json={"side": "buy", "amount_btc": 0.001}).status_code)
            miner = next(iter(passwords))
            statuses.append(unlimited_client.patch(f"/api/miners/{miner}", headers=headers, json={
                "pool": {"url": POOL, "worker": "busy", "password": passwords[miner]}}).status_code)

    worker = threading.Thread(target=serve)
    worker.start()
    try:
        assert rotate_master_key.main([]) == 0
    finally:
        stop.set()
        worker.join(30)
    assert statuses and set(statuses) <= {200, 201}, statuses

    keys, active = read_key_file(Path(get_kms().path))  # type: ignore[attr-defined]
    assert active != old_key and old_key in keys
    left = admin_db.one("SELECT count(*) FROM miner_pools WHERE master_key_id <> %s", active)
    left += admin_db.one("SELECT count(*) FROM exchange_credentials WHERE master_key_id <> %s", active)
    assert left == 0
    rows = admin_db.all("""SELECT miner_id::text, master_key_id, wrapped_key, nonce, ciphertext FROM miner_pools
                            WHERE tenant_id = %s""", user.tenant_id)
    for miner_id, key_id, wrapped, nonce, ciphertext in rows:
        cols = secrets.SealedColumns(key_id, bytes(wrapped), bytes(nonce), bytes(ciphertext))
        assert secrets.unseal_pool_password(user.tenant_id, miner_id, cols) == passwords[miner_id]
    untouched = [m for m, _, _, _, c in rows if m != next(iter(passwords))]
    assert all(bytes(before[m]) == bytes(c) for m, _, _, _, c in rows if m in untouched)
    trade = unlimited_client.post("/api/treasury/execute", headers=headers, json={"side": "sell", "amount_btc": 0.001})
    assert trade.status_code == 201 and trade.json()["signed_with"] == put.json()["api_key_hint"]
    new = unlimited_client.put("/api/treasury/credentials", headers=headers,
                               json={"exchange": "paper", "api_key": "n" * 20, "api_secret": "t" * 30})
    assert new.json()["master_key_id"] == active
