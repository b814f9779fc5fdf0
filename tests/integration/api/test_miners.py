"""POST/GET /api/miners, GET /api/miners/{id}, PATCH /api/miners/{id}/status, GET /api/miner-models."""

from __future__ import annotations

import json
import uuid

from generated.events import MinerAdded, MinerStatusChanged

DEMO_MINER = "7d1c1f8e-2f5b-4b8e-9a53-0c6f4b8a1d01"


def _create(client, user, **fields):
    body = {"model_id": "antminer-s21", **fields}
    return client.post("/api/miners", json=body, headers=user.headers())


def test_create_miner_writes_miner_owner_event_and_audit_in_one_go(client, user, admin_db):
    r = client.post(
        "/api/miners",
        json={"model_id": "antminer-s21", "label": "Rack A1 slot 4", "serial_number": "SN-1",
              "hosting_site": "Reykjavik DC-1", "pool_fee_pct": 2.0, "purchase_price_usd": 5400},
        headers={**user.headers(), "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                 "X-Request-ID": "req-create-1"},
    )
    assert r.status_code == 201, r.text
    miner = r.json()
    assert r.headers["Location"] == f"/api/miners/{miner['id']}"
    assert r.headers["X-Request-ID"] == "req-create-1"
    assert miner["tenant_id"] == user.tenant_id
    assert (miner["hashrate_ths"], miner["power_w"]) == (200.0, 3500)  # the model's, no override
    assert miner["purchase_price_usd"] == 5400.0 and miner["electricity_price_usd_kwh"] is None
    assert miner["created_at"].endswith("Z")

    assert admin_db.one("SELECT user_id FROM user_miners WHERE miner_id = %s", miner["id"]) == user.user_id
    kind, entity, payload, key, trace, tenant = admin_db.one(
        "SELECT kind, entity_id, payload, idempotency_key, trace_id, tenant_id FROM event_outbox WHERE user_id = %s",
        user.user_id)
    assert (kind, entity, key, tenant) == ("miner.added", miner["id"], None, user.tenant_id)
    assert trace == "4bf92f3577b34da6a3ce929d0e0e4736"
    event = MinerAdded.model_validate(payload)
    assert (str(event.miner_id), event.model_id, event.hashrate_ths, event.power_w) == (
        miner["id"], "antminer-s21", 200.0, 3500)
    action, actor, entity_id, request_id, trace_id, source_ip = admin_db.one(
        "SELECT action, actor_id, entity_id, request_id, trace_id, source_ip FROM audit_logs WHERE tenant_id = %s",
        user.tenant_id)
    assert (action, actor, entity_id, request_id, trace_id) == (
        "miner.create", user.user_id, miner["id"], "req-create-1", "4bf92f3577b34da6a3ce929d0e0e4736")
    assert source_ip


def test_overrides_are_the_effective_values(client, user):
    r = _create(client, user, hashrate_ths=190.5, power_w=3400, electricity_price_usd_kwh=0.05, status="idle")
    assert r.status_code == 201
    m = r.json()
    assert (m["hashrate_ths"], m["power_w"], m["electricity_price_usd_kwh"], m["status"]) == (190.5, 3400, 0.05, "idle")


def test_unknown_model_is_422_and_writes_nothing(client, user, admin_db):
    r = _create(client, user, model_id="antminer-s99")
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"] == [{"field": "model_id", "message": "unknown miner model 'antminer-s99'"}]
    assert admin_db.one("SELECT count(*) FROM miners WHERE tenant_id = %s", user.tenant_id) == 0
    assert admin_db.one("SELECT count(*) FROM event_outbox WHERE user_id = %s", user.user_id) == 0


def test_duplicate_serial_in_tenant_is_409(client, user, make_user, admin_db):
    assert _create(client, user, serial_number="DUP-1").status_code == 201
    r = _create(client, user, serial_number="DUP-1")
    assert r.status_code == 409 and "DUP-1" in r.json()["detail"]
    # The same serial in another tenant is fine (unique per tenant).
    assert _create(client, make_user(), serial_number="DUP-1").status_code == 201
    assert admin_db.one("SELECT count(*) FROM event_outbox WHERE user_id = %s", user.user_id) == 1


def test_schema_violations_are_400_with_field_errors(client, user):
    r = client.post("/api/miners", json={"model_id": "antminer-s21", "power_w": 0, "colour": "red"},
                    headers=user.headers())
    assert r.status_code == 400
    body = r.json()
    assert body["type"] == "about:blank" and body["status"] == 400
    fields = {e["field"] for e in body["errors"]}
    assert "power_w" in fields


def test_get_and_list_return_only_the_callers_miners(client, user, make_user):
    mine = [_create(client, user, label=f"m{i}").json() for i in range(3)]
    other_same_tenant = make_user(tenant_id=user.tenant_id)
    theirs = _create(client, other_same_tenant).json()

    r = client.get(f"/api/miners/{mine[0]['id']}", headers=user.headers("miners:read"))
    assert r.status_code == 200 and r.json() == mine[0]
    r = client.get(f"/api/miners/{theirs['id']}", headers=user.headers("miners:read"))
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"

    r = client.get("/api/miners", headers=user.headers("miners:read"))
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 3 and (body["limit"], body["offset"]) == (50, 0)
    assert [m["id"] for m in body["items"]] == [m["id"] for m in reversed(mine)]  # newest first


def test_list_paginates_and_filters(client, user):
    for i in range(5):
        _create(client, user, label=f"p{i}", status="idle" if i % 2 else "active")
    h = user.headers("miners:read")
    page = client.get("/api/miners?limit=2&offset=2", headers=h).json()
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (5, 2, 2, 2)
    beyond = client.get("/api/miners?limit=2&offset=10", headers=h).json()
    assert (beyond["total"], beyond["items"]) == (5, [])
    idle = client.get("/api/miners?status=idle", headers=h).json()
    assert idle["total"] == 2 and {m["status"] for m in idle["items"]} == {"idle"}
    assert client.get("/api/miners?model_id=whatsminer-m50s", headers=h).json()["total"] == 0
    assert client.get("/api/miners?limit=201", headers=h).status_code == 400
    assert client.get("/api/miners?status=broken", headers=h).status_code == 400


def test_another_tenants_miner_is_404_even_with_the_same_user_id_shape(client, user):
    # The seeded demo miner belongs to demo-tenant: invisible (RLS) to every other tenant.
    r = client.get(f"/api/miners/{DEMO_MINER}", headers=user.headers("miners:read"))
    assert r.status_code == 404
    assert r.json()["detail"] == f"Miner {DEMO_MINER} not found"
    r = client.patch(f"/api/miners/{DEMO_MINER}/status", json={"status": "idle"}, headers=user.headers())
    assert r.status_code == 404


def test_malformed_miner_id_is_400(client, user):
    assert client.get("/api/miners/not-a-uuid", headers=user.headers()).status_code == 400


def test_status_change_follows_the_state_machine(client, user, admin_db):
    miner = _create(client, user).json()
    url = f"/api/miners/{miner['id']}/status"
    r = client.patch(url, json={"status": "maintenance", "reason": "fan swap"}, headers=user.headers())
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "maintenance" and r.json()["updated_at"] >= miner["updated_at"]
    payload = admin_db.one(
        "SELECT payload FROM event_outbox WHERE user_id = %s AND kind = 'miner.status_changed'", user.user_id)
    event = MinerStatusChanged.model_validate(payload)
    assert (event.from_status.value, event.to_status.value, event.reason) == ("active", "maintenance", "fan swap")
    details = admin_db.one(
        "SELECT details FROM audit_logs WHERE tenant_id = %s AND action = 'miner.status_change'", user.tenant_id)
    assert (details["from"], details["to"]) == ("active", "maintenance")

    # same status -> 409, no second event
    r = client.patch(url, json={"status": "maintenance"}, headers=user.headers())
    assert r.status_code == 409
    problem = r.json()
    assert problem["type"] == "urn:hashinsight:problem:invalid-status-transition"
    assert problem["detail"] == f"Miner {miner['id']} is already maintenance"
    assert problem["instance"] == url

    assert client.patch(url, json={"status": "retired"}, headers=user.headers()).status_code == 200
    r = client.patch(url, json={"status": "active"}, headers=user.headers())
    assert r.status_code == 409 and "final" in r.json()["detail"]
    kinds = admin_db.all("SELECT kind FROM event_outbox WHERE user_id = %s ORDER BY created_at", user.user_id)
    assert [k for (k,) in kinds] == ["miner.added", "miner.status_changed", "miner.status_changed"]
    assert admin_db.one("SELECT status FROM miners WHERE id = %s", miner["id"]) == "retired"


def test_status_change_of_another_users_miner_is_404(client, user, make_user):
    theirs = _create(client, make_user(tenant_id=user.tenant_id)).json()
    r = client.patch(f"/api/miners/{theirs['id']}/status", json={"status": "idle"}, headers=user.headers())
    assert r.status_code == 404


def test_status_change_rejects_unknown_fields_and_statuses(client, user):
    miner = _create(client, user).json()
    url = f"/api/miners/{miner['id']}/status"
    assert client.patch(url, json={"status": "exploded"}, headers=user.headers()).status_code == 400
    assert client.patch(url, json={"status": "idle", "x": 1}, headers=user.headers()).status_code == 400
    assert client.patch(url, json={}, headers=user.headers()).status_code == 400


def test_miner_models_catalogue(client, user):
    r = client.get("/api/miner-models", headers=user.headers("miners:read"))
    assert r.status_code == 200
    items = r.json()["items"]
    by_id = {m["id"]: m for m in items}
    assert {"antminer-s21", "antminer-s19-pro", "whatsminer-m50s", "avalon-a1466"} <= set(by_id)
    assert by_id["antminer-s21"] == {
        "id": "antminer-s21", "manufacturer": "Bitmain", "name": "Antminer S21", "hashrate_ths": 200.0,
        "power_w": 3500, "efficiency_j_th": 17.5, "release_year": 2023, "algorithm": "SHA-256"}
    assert [(m["manufacturer"], m["name"]) for m in items] == sorted((m["manufacturer"], m["name"]) for m in items)


def test_ids_in_responses_are_uuids(client, user):
    m = _create(client, user).json()
    assert str(uuid.UUID(m["id"])) == m["id"]
    assert json.loads(client.get(f"/api/miners/{m['id'].upper()}", headers=user.headers()).text)["id"] == m["id"]
