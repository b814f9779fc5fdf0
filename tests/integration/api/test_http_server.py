"""The production server (python -m app.entrypoints.serve: uvicorn, 2 workers) over real HTTP."""

from __future__ import annotations

import httpx


def test_spec_ui_and_problem_errors_over_http(server):
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        assert c.get("/api/openapi.json").json()["info"]["title"] == "HashInsight API"
        assert c.get("/api/ui/").status_code == 200
        r = c.get("/api/miners")
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        assert r.headers["x-request-id"] == r.json()["request_id"]
        assert "server" not in r.headers  # no server banner


def test_write_and_read_over_http(server, user, admin_db):
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        r = c.post("/api/miners", json={"model_id": "whatsminer-m50s", "label": "over http"},
                   headers={**user.headers(), "X-Request-ID": "http-1"})
        assert r.status_code == 201, r.text
        assert r.headers["x-request-id"] == "http-1" and "ratelimit-limit" in r.headers
        location = r.headers["location"]
        got = c.get(location, headers=user.headers("miners:read"))
        assert got.status_code == 200 and got.json() == r.json()
    # the audit row records the client address uvicorn saw
    assert admin_db.one("SELECT source_ip FROM audit_logs WHERE request_id = 'http-1'") == "127.0.0.1"


def test_server_runs_several_worker_processes(server):
    import subprocess

    children = subprocess.run(["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True).stdout.split()
    # uvicorn's supervisor + 2 workers (multiprocessing may add a resource tracker)
    assert len(children) >= 2, server.log()
