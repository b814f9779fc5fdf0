"""Hostile input gets a clear, concise 4xx: unstorable text, oversized bodies, long values, long headers."""

from __future__ import annotations

import json
import statistics
import threading
import time

import httpx
import pytest

from tests.integration.api import support

PROBLEM = "application/problem+json"


def _problem(r, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["content-type"] == PROBLEM
    return r.json()


def _raw(client, path: str, body: bytes, headers: dict[str, str]):
    return client.post(path, content=body, headers={**headers, "Content-Type": "application/json"})


def test_nul_byte_in_a_string_is_422_naming_the_field(client, user, admin_db):
    r = client.post("/api/miners", json={"model_id": "antminer-s21", "label": "rack\u0000 7"}, headers=user.headers())
    problem = _problem(r, 422)
    assert problem["type"] == "urn:hashinsight:problem:invalid-text"
    assert problem["detail"].startswith("label: contains a NUL character")
    assert problem["errors"] == [{"field": "label", "message": problem["detail"].split(": ", 1)[1]}]
    assert admin_db.one("SELECT count(*) FROM miners WHERE tenant_id = %s", user.tenant_id) == 0


def test_lone_surrogate_is_422_naming_the_field(client, user):
    # json.dumps would escape it the same way; written by hand to show exactly what goes over the wire.
    body = b'{"model_id": "antminer-s21", "hosting_site": "DC \\ud800 one"}'
    problem = _problem(_raw(client, "/api/miners", body, user.headers()), 422)
    assert problem["errors"][0]["field"] == "hosting_site"
    assert "lone surrogate" in problem["detail"]


def test_unstorable_text_deep_in_a_bulk_import_names_the_item(client, user, admin_db):
    items = [{"model_id": "antminer-s21", "label": f"ok {i}"} for i in range(5)]
    items[3]["label"] = "bad\u0000"
    problem = _problem(client.post("/api/miners/bulk", json={"items": items}, headers=user.headers()), 422)
    assert problem["errors"] == [{"field": "items[3].label", "message": problem["errors"][0]["message"]}]
    assert admin_db.one("SELECT count(*) FROM miners WHERE tenant_id = %s", user.tenant_id) == 0


def test_nul_in_a_status_change_reason_is_422(client, user):
    created = client.post("/api/miners", json={"model_id": "antminer-s21"}, headers=user.headers())
    assert created.status_code == 201
    r = client.patch(f"/api/miners/{created.json()['id']}/status", json={"status": "idle", "reason": "a\u0000b"},
                     headers=user.headers())
    assert _problem(r, 422)["errors"][0]["field"] == "reason"


def test_schema_errors_are_concise_and_never_echo_long_values(client, user):
    label = "L" * 5000
    r = client.post("/api/miners", json={"model_id": "antminer-s21", "label": label}, headers=user.headers())
    problem = _problem(r, 400)
    assert problem["detail"] == "label: must be at most 100 characters (got 5000)"
    assert problem["errors"] == [{"field": "label", "message": "must be at most 100 characters (got 5000)"}]
    assert len(r.content) < 600 and "LLLLLLLLLL" not in r.text


def test_a_long_header_is_a_short_problem(client, user):
    r = client.post("/api/miners", json={"model_id": "antminer-s21"},
                    headers={**user.headers(), "Idempotency-Key": "k" * 200})
    problem = _problem(r, 400)
    assert problem["detail"] == "header parameter 'Idempotency-Key': must be at most 128 characters (got 200)"
    assert len(r.content) < 500, r.text  # was several kB: the whole schema and the value


def test_every_error_of_a_body_is_listed_by_field(client, user):
    body = {"model_id": "Xy", "pool_fee_pct": 50, "status": "dancing", "colour": "red"}
    problem = _problem(client.post("/api/miners", json=body, headers=user.headers()), 400)
    messages = {e["field"]: e["message"] for e in problem["errors"]}
    assert messages == {
        "(body)": "unknown property 'colour'",
        "model_id": "must match ^[a-z0-9][a-z0-9-]*[a-z0-9]$",
        "pool_fee_pct": "must be <= 10",
        "status": "must be one of: active, idle, maintenance, offline, retired",
    }, messages
    text = problem["detail"] + "".join(e["message"] for e in problem["errors"])
    assert "Failed validating" not in text and "{" not in text  # no schema fragment anywhere


def test_unknown_query_parameters_are_named_briefly(client, user):
    problem = _problem(client.get("/api/miners?" + "z" * 3000 + "=1", headers=user.headers()), 400)
    assert len(problem["detail"]) < 120 and problem["detail"].startswith("Unknown query parameter(s) 'zzz")


def test_a_body_over_its_declared_size_is_413_before_it_is_read(client, user):
    big = json.dumps({"model_id": "antminer-s21", "label": "x" * 70_000}).encode()  # over 64 KiB
    problem = _problem(_raw(client, "/api/miners", big, user.headers()), 413)
    assert problem["type"] == "urn:hashinsight:problem:body-too-large"
    assert "65536 bytes" in problem["detail"]


def _bulk(n: int) -> bytes:
    return json.dumps({"items": [{"model_id": "antminer-s21", "label": f"r{i}"} for i in range(n)]}).encode()


@pytest.fixture(scope="module")
def unlimited_server(api_db, tmp_path_factory):
    """The real server (uvicorn, 2 workers) with rate limiting off, so every oversized request reaches the body
    check instead of being stopped by the caller's plan first."""
    env = {**support.env_for(api_db), "RATE_LIMIT_ENABLED": "0"}
    with support.uvicorn_server(tmp_path_factory.mktemp("serve"), workers=2, env=env) as srv:
        yield srv


def test_100000_item_bulk_is_refused_in_milliseconds_and_blocks_nobody(unlimited_server, make_user):
    server = unlimited_server
    user = make_user()
    body = _bulk(100_000)  # ~4.9 MB, under the 16 MiB body limit: only the item count can refuse it
    headers = {**user.headers(), "Content-Type": "application/json"}
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        assert http.get("/api/miners", headers=user.headers()).status_code == 200  # provisioned, warm
        timings, reads = [], []
        for _ in range(5):
            started = time.perf_counter()
            r = http.post("/api/miners/bulk", content=body, headers=headers)
            timings.append(time.perf_counter() - started)
            problem = _problem(r, 413)
            assert problem["type"] == "urn:hashinsight:problem:too-many-items"
            assert problem["detail"] == "At most 10000 items in 'items' per request; this one has more"
            started = time.perf_counter()
            assert http.get("/api/miners?limit=1", headers=user.headers()).status_code == 200
            reads.append(time.perf_counter() - started)
        median, read = statistics.median(timings), statistics.median(reads)
        print(f"\n100,000-item bulk refused in {median * 1000:.0f} ms (median of 5, sending 4.9 MB included); "
              f"a one-miner read meanwhile: {read * 1000:.0f} ms")
        # Under 100 ms on an idle machine (it used to take 2.5-2.8 s). The machine is shared, so the bound grows
        # with what a trivial read costs at the same moment: the refusal must stay within four such reads.
        assert median < max(0.1, 4 * read), (timings, reads)

        # Meanwhile other requests go on: three clients keep sending the oversized batch while a fourth reads.
        stop = threading.Event()

        def flood() -> None:
            with httpx.Client(base_url=server.base_url, timeout=30) as c:
                while not stop.is_set():
                    c.post("/api/miners/bulk", content=body, headers=headers)

        floods = [threading.Thread(target=flood) for _ in range(3)]
        for t in floods:
            t.start()
        try:
            reads = []
            for _ in range(20):
                started = time.perf_counter()
                assert http.get("/api/miners?limit=1", headers=user.headers()).status_code == 200
                reads.append(time.perf_counter() - started)
        finally:
            stop.set()
            for t in floods:
                t.join()
        during = statistics.median(reads)
        print(f"reads during the flood: median {during * 1000:.0f} ms, max {max(reads) * 1000:.0f} ms")
        assert during < max(0.25, 10 * read), reads


def test_10000_items_still_pass_the_count(client, user):
    # The count stops only past the bound: exactly 10,000 items reach validation (here: one bad item -> 400).
    items = [{"model_id": "antminer-s21"} for _ in range(10_000)]
    items[-1]["pool_fee_pct"] = 99
    problem = _problem(client.post("/api/miners/bulk", json={"items": items}, headers=user.headers()), 400)
    assert problem["errors"] == [{"field": "items[9999].pool_fee_pct", "message": "must be <= 10"}]
