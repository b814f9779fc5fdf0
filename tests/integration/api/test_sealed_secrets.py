"""A miner's pool password and a user's exchange key: sealed at rest, hinted in responses, unsealed to trade."""

from __future__ import annotations

import uuid

from app.service_layer import secrets

POOL_URL = "stratum+tcp://btc.pool.example:3333"


def _secret(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex}"


def test_a_pool_password_is_sealed_and_never_returned(unlimited_client, user, admin_db):
    password = _secret("pool")
    resp = unlimited_client.post("/api/miners", headers=user.headers(), json={
        "model_id": "antminer-s21", "pool": {"url": POOL_URL, "worker": "rig.1", "password": password}})
    assert resp.status_code == 201, resp.text
    assert password not in resp.text
    pool = resp.json()["pool"]
    assert pool == {"url": POOL_URL, "worker": "rig.1", "password_set": True, "password_hint": "••••••" + password[-2:]}
    miner_id = resp.json()["id"]
    row = admin_db.all("SELECT master_key_id, wrapped_key, nonce, ciphertext FROM miner_pools WHERE miner_id = %s",
                       miner_id)[0]
    cols = secrets.SealedColumns(row[0], bytes(row[1]), bytes(row[2]), bytes(row[3]))
    assert password.encode() not in cols.ciphertext and len(cols.wrapped_key) == 12 + 32 + 16
    assert secrets.unseal_pool_password(user.tenant_id, miner_id, cols) == password
    # Bound to its row: the same ciphertext does not open as another miner's.
    other = str(uuid.uuid4())
    try:
        secrets.unseal_pool_password(user.tenant_id, other, cols)
        raise AssertionError("a ciphertext opened under another miner's AAD")
    except Exception as exc:  # noqa: BLE001
        assert "does not decrypt" in str(exc)
    details = admin_db.one("SELECT details::text FROM audit_logs WHERE tenant_id = %s AND action = %s",
                           user.tenant_id, "miner.create")
    assert password not in details and '"password_given": true' in details
    listed = unlimited_client.get("/api/miners", headers=user.headers()).json()["items"][0]
    assert listed["pool"]["password_set"] is True and password not in str(listed)


def test_patch_changes_the_pool_keeps_or_removes_its_password(unlimited_client, user, admin_db):
    miner_id = unlimited_client.post("/api/miners", json={"model_id": "antminer-s21"},
                                     headers=user.headers()).json()["id"]
    password = _secret("pw")
    set_ = unlimited_client.patch(f"/api/miners/{miner_id}", headers=user.headers(), json={
        "label": "rack 9", "pool": {"url": POOL_URL, "worker": "w1", "password": password}})
    assert set_.status_code == 200, set_.text
    assert set_.json()["label"] == "rack 9" and set_.json()["pool"]["password_set"] is True
    keep = unlimited_client.patch(f"/api/miners/{miner_id}", headers=user.headers(),
                                  json={"pool": {"url": POOL_URL, "worker": "w2"}})
    assert keep.json()["pool"] == {"url": POOL_URL, "worker": "w2", "password_set": True,
                                   "password_hint": "••••••" + password[-2:]}
    gone = unlimited_client.patch(f"/api/miners/{miner_id}", headers=user.headers(), json={"pool": None})
    assert gone.status_code == 200 and gone.json()["pool"] is None
    kinds = [r[0] for r in admin_db.all("SELECT payload->>'changed' FROM event_outbox WHERE tenant_id = %s "
                                        "AND kind = 'miner.updated' ORDER BY created_at", user.tenant_id)]
    assert kinds == ['["label", "pool"]', '["pool"]', '["pool"]']
    assert admin_db.one("SELECT count(*) FROM miner_pools WHERE miner_id = %s", miner_id) == 0
    assert unlimited_client.patch(f"/api/miners/{miner_id}", headers=user.headers(), json={}).status_code == 400
    assert unlimited_client.patch(f"/api/miners/{uuid.uuid4()}", headers=user.headers(),
                                  json={"label": "x"}).status_code == 404


def test_exchange_credentials_are_sealed_and_sign_the_trade(unlimited_client, user, admin_db):
    api_key, api_secret = _secret("key"), _secret("secret")
    resp = unlimited_client.put("/api/treasury/credentials", headers=user.headers(),
                                json={"exchange": "paper", "api_key": api_key, "api_secret": api_secret})
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["api_key_hint"] == "…" + api_key[-8:] and doc["api_secret_set"] is True
    assert api_key not in resp.text and api_secret not in resp.text
    dump = admin_db.one("SELECT row_to_json(c)::text FROM exchange_credentials c WHERE user_id = %s", user.user_id)
    assert api_key not in dump and api_secret not in dump
    assert admin_db.one("SELECT master_key_id FROM exchange_credentials WHERE user_id = %s",
                        user.user_id) == doc["master_key_id"]
    trade = unlimited_client.post("/api/treasury/execute", json={"side": "buy", "amount_btc": 0.01},
                                  headers=user.headers())
    assert trade.status_code == 201, trade.text
    assert trade.json()["signed_with"] == doc["api_key_hint"]
    unknown = unlimited_client.put("/api/treasury/credentials", headers=user.headers(),
                                   json={"exchange": "nowhere", "api_key": api_key, "api_secret": api_secret})
    assert unknown.status_code == 422


def test_a_trade_without_stored_credentials_is_not_signed(unlimited_client, user):
    trade = unlimited_client.post("/api/treasury/execute", json={"side": "sell", "amount_btc": 0.01},
                                  headers=user.headers())
    assert trade.status_code == 201 and trade.json()["signed_with"] is None
