"""POST /api/ops/maintenance and GET /api/ops/schedule: validated windows, overlaps refused, a cached day."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from app.adapters.cache import ops_schedule_key
from app.adapters.redis_client import get_redis
from tests.integration.api.read_support import private_cache


@pytest.fixture
def app_cache(monkeypatch):
    with private_cache(monkeypatch) as cache:
        yield cache


def _miner(client, user) -> str:
    resp = client.post("/api/miners", json={"model_id": "antminer-s21"}, headers=user.headers())
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def _at(days: int, hour: int) -> str:
    day = datetime.now(timezone.utc).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")


def test_a_window_is_scheduled_with_its_event_and_audit_row(unlimited_client, user, admin_db):
    miner = _miner(unlimited_client, user)
    body = {"miner_id": miner, "starts_at": _at(3, 22), "ends_at": _at(4, 2), "reason": "Fan replacement"}
    resp = unlimited_client.post("/api/ops/maintenance", json=body, headers=user.headers())
    assert resp.status_code == 201, resp.text
    window = resp.json()
    first, second = (datetime.now(timezone.utc).date() + timedelta(days=d) for d in (3, 4))
    assert window["days"] == [first.isoformat(), second.isoformat()]
    assert window["miner_id"] == miner and window["reason"] == "Fan replacement"
    payload = admin_db.one("SELECT payload FROM event_outbox WHERE tenant_id = %s AND kind = %s",
                           user.tenant_id, "ops.maintenance_scheduled")
    assert payload["days"] == window["days"] and payload["window_id"] == window["id"]
    assert payload["day"] == first.isoformat() and payload["window_start"] == window["starts_at"]
    assert admin_db.one("SELECT count(*) FROM audit_logs WHERE tenant_id = %s AND action = %s",
                        user.tenant_id, "ops.maintenance_schedule") == 1


def test_overlapping_windows_of_one_miner_are_refused(unlimited_client, user, admin_db):
    miner, other = _miner(unlimited_client, user), _miner(unlimited_client, user)
    body = {"miner_id": miner, "starts_at": _at(5, 8), "ends_at": _at(5, 12)}
    assert unlimited_client.post("/api/ops/maintenance", json=body, headers=user.headers()).status_code == 201
    clash = unlimited_client.post("/api/ops/maintenance", headers=user.headers(),
                                  json=body | {"starts_at": _at(5, 11), "ends_at": _at(5, 14)})
    assert clash.status_code == 409, clash.text
    assert clash.json()["type"] == "urn:hashinsight:problem:maintenance-overlap"
    # Touching is not overlapping, and another miner is free at the same time.
    after = unlimited_client.post("/api/ops/maintenance", headers=user.headers(),
                                  json=body | {"starts_at": _at(5, 12), "ends_at": _at(5, 13)})
    assert after.status_code == 201, after.text
    same_time = unlimited_client.post("/api/ops/maintenance", headers=user.headers(), json=body | {"miner_id": other})
    assert same_time.status_code == 201, same_time.text
    assert admin_db.one("SELECT count(*) FROM maintenance_windows WHERE tenant_id = %s", user.tenant_id) == 3


@pytest.mark.parametrize(("starts", "ends", "words"), [
    ((5, 12), (5, 8), "after starts_at"),
    ((-3, 1), (-2, 1), "in the future"),
    ((1, 0), (16, 0), "14 days"),
])
def test_times_are_validated(unlimited_client, user, starts, ends, words):
    miner = _miner(unlimited_client, user)
    resp = unlimited_client.post("/api/ops/maintenance", headers=user.headers(),
                                 json={"miner_id": miner, "starts_at": _at(*starts), "ends_at": _at(*ends)})
    assert resp.status_code == 422, resp.text
    assert words in resp.json()["detail"]


def test_another_users_miner_is_not_found(unlimited_client, user, make_user):
    miner = _miner(unlimited_client, user)
    stranger = make_user(tenant_id=user.tenant_id)
    resp = unlimited_client.post("/api/ops/maintenance", headers=stranger.headers(),
                                 json={"miner_id": miner, "starts_at": _at(2, 1), "ends_at": _at(2, 2)})
    assert resp.status_code == 404, resp.text
    unknown = unlimited_client.post("/api/ops/maintenance", headers=user.headers(),
                                    json={"miner_id": str(uuid.uuid4()), "starts_at": _at(2, 1), "ends_at": _at(2, 2)})
    assert unknown.status_code == 404


def test_the_schedule_lists_the_windows_touching_a_day_and_is_cached(unlimited_client, user, app_cache):
    miner = _miner(unlimited_client, user)
    for body in ({"starts_at": _at(7, 22), "ends_at": _at(8, 3)}, {"starts_at": _at(8, 20), "ends_at": _at(9, 1)},
                 {"starts_at": _at(10, 1), "ends_at": _at(10, 2)}):
        resp = unlimited_client.post("/api/ops/maintenance", json={"miner_id": miner, **body}, headers=user.headers())
        assert resp.status_code == 201, resp.text
    day = (datetime.now(timezone.utc).date() + timedelta(days=8)).isoformat()
    resp = unlimited_client.get("/api/ops/schedule", params={"day": day}, headers=user.headers(scopes="ops:read"))
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["day"] == day and doc["stale"] is False
    assert [w["starts_at"] for w in doc["windows"]] == [_at(7, 22), _at(8, 20)]
    assert get_redis().exists(app_cache._prefix + ops_schedule_key(user.user_id, date.fromisoformat(day)))
    again = unlimited_client.get("/api/ops/schedule", params={"day": day}, headers=user.headers(scopes="ops:read"))
    assert again.json()["generated_at"] == doc["generated_at"]  # served from ops_schedule:{uid}:{yyyymmdd}


def test_the_schedule_needs_ops_read_and_a_real_day(unlimited_client, user):
    assert unlimited_client.get("/api/ops/schedule", headers=user.headers(scopes="portfolio:read")).status_code == 403
    bad = unlimited_client.get("/api/ops/schedule", params={"day": "2025-02-30"}, headers=user.headers())
    assert bad.status_code == 400 and "calendar date" in bad.json()["detail"]
    today = unlimited_client.get("/api/ops/schedule", headers=user.headers())
    assert today.status_code == 200 and today.json()["day"] == datetime.now(timezone.utc).date().isoformat()
