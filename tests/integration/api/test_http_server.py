"""The production server (python -m app.entrypoints.serve: uvicorn, 2 workers) over real HTTP."""

from __future__ import annotations

import time

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


def _count(body: str, operation: str, status: str) -> float:
    import re

    m = re.search(rf'hashinsight_http_requests_total\{{method="GET",operation="{operation}",status="{status}"\}} (\S+)',
                  body)
    return float(m.group(1)) if m else 0.0


def test_metrics_count_requests_of_every_worker_process_and_report_the_bus(server, user):
    """prometheus_client's multiprocess mode: whichever worker answers /metrics reports all of them."""
    import re

    # A scrape answers within its 2 s probe budget; the generous timeout is for a loaded shared machine.
    with httpx.Client(base_url=server.base_url, timeout=30) as c:
        before = c.get("/metrics").text
        for _ in range(12):  # a new connection each time, so both worker processes take some
            with httpx.Client(base_url=server.base_url, timeout=10) as one:
                assert one.get("/api/miners", headers=user.headers("miners:read")).status_code == 200
        assert c.get("/api/miners").status_code == 401
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    body = r.text
    assert _count(body, "list_miners", "200") - _count(before, "list_miners", "200") == 12, body[:2000]
    assert _count(body, "list_miners", "401") - _count(before, "list_miners", "401") == 1
    assert 'hashinsight_http_request_duration_seconds_bucket{le="0.1",operation="list_miners"}' in body
    assert not re.findall(r'pid="(\d+)"', body)  # merged over the processes, not one series per process
    # The bus's figures, read at scrape time.
    for name in ("hashinsight_outbox_backlog", "hashinsight_replication_slot_lag_bytes", "hashinsight_dlq_records",
                 'hashinsight_consumer_group_lag{group="hashinsight.portfolio"}', 'hashinsight_dependency_up{'
                 'dependency="kafka"} 1.0', 'hashinsight_cache_lookups_total{result="miss"}'):
        assert name in body, name
    assert re.search(r'hashinsight_connector_task_state\{connector="hashinsight-outbox",state="(\w+)",task="0"\} '
                     r'1\.0', body)


def test_every_answer_has_an_access_line_with_its_request_id(server, user):
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        ok = c.get("/api/portfolio", headers={**user.headers("portfolio:read"), "X-Request-ID": "access-ok"})
        refused = c.get("/api/portfolio?x=%0D%0Aforged", headers={"X-Request-ID": "access-401"})
    assert ok.status_code == 200 and refused.status_code == 401
    wanted = {
        "access-ok": '"GET /api/portfolio HTTP/1.1" 200 ',
        "access-401": '"GET /api/portfolio?x=%0D%0Aforged HTTP/1.1" 401 ',  # still encoded: no forged line
    }
    deadline = time.monotonic() + 5  # lines leave in batches, at most 0.2 s after the first
    while True:
        lines = {line.rsplit(" ", 1)[-1]: line for line in server.log().splitlines() if line.endswith(tuple(wanted))}
        if set(lines) == set(wanted) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert set(lines) == set(wanted), server.log()[-3000:]
    for request_id, request in wanted.items():
        line = lines[request_id]
        assert line.startswith(time.strftime("%Y-")) and " 127.0.0.1 " in line and request in line, line
        assert line.split()[-2] == "get_portfolio" and line.split()[-3].endswith("ms"), line
    assert not any(ln.startswith("forged") for ln in server.log().splitlines())
