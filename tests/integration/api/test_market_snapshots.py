"""POST /api/market/snapshots: the snapshot, its market.snapshot_recorded event and its audit row, together."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from app.service_layer.market import implied_hashrate_ehs


def _latest(admin_db) -> tuple:
    return admin_db.one("SELECT ts, btc_price_usd, difficulty, block_reward_btc FROM network_latest")


def _same_figures_later(admin_db) -> dict:
    """A body that becomes the latest snapshot without changing any figure other tests compute."""
    _, price, difficulty, reward = _latest(admin_db)
    return {"btc_price_usd": price, "difficulty": difficulty, "block_reward_btc": reward}


def test_a_snapshot_is_recorded_with_its_event_and_audit_row(client, user, admin_db):
    body = _same_figures_later(admin_db)
    resp = client.post("/api/market/snapshots", json=body, headers=user.headers())
    assert resp.status_code == 201, resp.text
    doc = resp.json()
    assert doc["is_latest"] is True and doc["source"] == "api"
    assert doc["network_hashrate_ehs"] == round(implied_hashrate_ehs(body["difficulty"]), 2)
    assert _latest(admin_db)[0].isoformat().startswith(doc["ts"][:19])
    kind, payload, outbox_user = admin_db.one(
        "SELECT kind, payload, user_id FROM event_outbox WHERE tenant_id = %s", user.tenant_id)
    assert (kind, outbox_user) == ("market.snapshot_recorded", user.user_id)
    assert payload["btc_price_usd"] == body["btc_price_usd"] and payload["ts"] == doc["ts"]
    action = admin_db.one("SELECT action FROM audit_logs WHERE tenant_id = %s", user.tenant_id)
    assert action == "market.snapshot_record"


def test_a_back_dated_snapshot_is_kept_but_changes_no_figure(client, user, admin_db):
    latest_before = _latest(admin_db)
    ts = (datetime.now(timezone.utc) - timedelta(days=400, microseconds=uuid.uuid4().int % 10**6)).isoformat()
    resp = client.post("/api/market/snapshots", headers=user.headers(),
                       json={"btc_price_usd": 1234.5, "difficulty": 2e13, "block_reward_btc": 6.25, "ts": ts,
                             "network_hashrate_ehs": 150.0})
    assert resp.status_code == 201, resp.text
    assert resp.json()["is_latest"] is False and resp.json()["network_hashrate_ehs"] == 150.0
    assert _latest(admin_db) == latest_before
    payload = admin_db.one("SELECT payload FROM event_outbox WHERE tenant_id = %s", user.tenant_id)
    assert payload["is_latest"] is False

    again = client.post("/api/market/snapshots", headers=user.headers(),
                        json={"btc_price_usd": 1, "difficulty": 2e13, "block_reward_btc": 6.25, "ts": ts})
    assert again.status_code == 409, again.text
    assert again.headers["content-type"].startswith("application/problem+json")
    assert "already exists" in again.json()["detail"]


def test_times_and_bounds_are_checked(client, user, admin_db):
    base = {"btc_price_usd": 1000, "difficulty": 1e14, "block_reward_btc": 3.125}
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    resp = client.post("/api/market/snapshots", json=base | {"ts": future}, headers=user.headers())
    assert resp.status_code == 422 and "future" in resp.json()["detail"]
    for bad in ({"btc_price_usd": 0}, {"difficulty": 0.5}, {"block_reward_btc": 51}, {"ts": "yesterday"}):
        resp = client.post("/api/market/snapshots", json=base | bad, headers=user.headers())
        assert resp.status_code == 400, (bad, resp.text)
    resp = client.post("/api/market/snapshots", json=base | {"ts": "2020-01-01T00:00:00"}, headers=user.headers())
    assert resp.status_code == 400 and "date-time" in resp.json()["detail"]  # a time without a zone
    assert admin_db.one("SELECT count(*) FROM event_outbox WHERE tenant_id = %s", user.tenant_id) == 0


def test_the_market_write_scope_is_required(client, user):
    resp = client.post("/api/market/snapshots", headers=user.headers(scopes="portfolio:read"),
                       json={"btc_price_usd": 1000, "difficulty": 1e14, "block_reward_btc": 3.125})
    assert resp.status_code == 403 and "market:write" in resp.json()["detail"]


def test_a_repeated_idempotency_key_records_one_snapshot(client, user, admin_db):
    key = str(uuid.uuid4())
    body = _same_figures_later(admin_db)
    first = client.post("/api/market/snapshots", json=body, headers=user.headers(idempotency_key=key))
    second = client.post("/api/market/snapshots", json=body, headers=user.headers(idempotency_key=key))
    assert first.status_code == second.status_code == 201
    assert second.headers.get("Idempotent-Replayed") == "true" and second.json() == first.json()
    assert admin_db.one("SELECT count(*) FROM event_outbox WHERE tenant_id = %s", user.tenant_id) == 1
