"""GET /api/health against the real stack (PostgreSQL, Redis, Kafka, registry, Connect): the contract's fields and
types, ok/degraded, a dependency down (still a 200, in well under a second), single-flight probes and the Kafka
figures cached per process."""

from __future__ import annotations

import socket
import threading
import time
import uuid

import pytest
import yaml

import app
from app.adapters import cache as cache_module
from app.adapters.tokens import encode_token
from app.service_layer import health as health_service
from generated import routes
from workers.intel_consumer import IntelHandler
from workers.portfolio_consumer import PortfolioHandler

SPEC = yaml.safe_load(routes.SPEC_FILE.read_text())
DEPENDENCIES = {"postgres", "redis", "kafka", "schema_registry", "connect"}


@pytest.fixture(autouse=True)
def _fresh_probes() -> None:
    # Each test sees live figures, not the previous test's cached Kafka answer.
    health_service._runner.clear_cache()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once it is closed


def _ops_headers() -> dict[str, str]:
    # A fresh operator per call, so the rate limit of one never shapes these tests.
    suffix = uuid.uuid4().hex[:10]
    return {"Authorization": "Bearer " + encode_token(f"ops-{suffix}", f"ops-t-{suffix}", "ops:read")}


def _health(client, headers: dict[str, str] | None = None) -> tuple[dict, float]:
    """The detailed document (an ops:read caller) unless other headers are given."""
    started = time.perf_counter()
    r = client.get("/api/health", headers=_ops_headers() if headers is None else headers)
    elapsed = time.perf_counter() - started
    assert r.status_code == 200, r.text  # never a 500 and never a 503: status says it
    assert r.headers["content-type"] == "application/json"
    return r.json(), elapsed


def test_fields_and_types_match_the_contract(client, admin_db):
    # A forecast refresh 5 s ago, as a refresh stamps it in its transaction (migration 0012): forecast_freshness_sec
    # is then a number, never null.
    admin_db.execute(
        "INSERT INTO forecast_refresh (computed_at) VALUES (now() - interval '5 seconds')"
        " ON CONFLICT (singleton) DO UPDATE SET computed_at = EXCLUDED.computed_at")
    h, elapsed = _health(client)
    schema = SPEC["components"]["schemas"]["Health"]
    assert set(schema["required"]) <= set(h)
    assert set(h) <= set(schema["properties"])
    assert h["status"] in ("ok", "degraded") and h["status"] == ("degraded" if h["reasons"] else "ok")
    assert h["version"] == app.__version__
    assert isinstance(h["outbox_backlog"], int) and h["outbox_backlog"] >= 0
    assert set(h["kafka_consumer_lag"]) == {"hashinsight.portfolio", "hashinsight.intel"}
    assert all(isinstance(v, int) and v >= 0 for v in h["kafka_consumer_lag"].values())
    assert isinstance(h["dlq_count"], int) and h["dlq_count"] >= 0
    assert h["cache_hit_rate"] is None or 0 <= h["cache_hit_rate"] <= 1
    # None until the connector first starts and creates its slot (tests/integration/pipeline covers the number).
    lag = h["replication_slot_lag_bytes"]
    assert lag is None or (isinstance(lag, int) and lag >= 0)
    # Other suites stop and re-register the connector, so its state is whatever it is now; health must say so.
    state = h["connector_state"]
    assert state in ("RUNNING", "PAUSED", "STOPPED", "FAILED", "UNASSIGNED", "MISSING")
    assert (f"outbox connector is {state}" in h["reasons"]) == (state != "RUNNING")
    assert set(h["dependencies"]) == DEPENDENCIES
    assert all(d == {"status": "ok", "detail": d["detail"]} for d in h["dependencies"].values()), h["dependencies"]
    assert h["dependencies"]["connect"]["detail"].startswith(f"outbox connector {state}")
    # Read through hashinsight_forecast_freshness() (migrations 0009, 0012), across tenants.
    assert isinstance(h["forecast_freshness_sec"], float) and 4 <= h["forecast_freshness_sec"] < 600
    assert elapsed < 1.0


def test_consumer_groups_are_the_workers(client):
    workers = {PortfolioHandler.name: PortfolioHandler.topics, IntelHandler.name: IntelHandler.topics}
    assert workers == health_service.CONSUMER_GROUPS


def test_redis_down_is_degraded_and_still_200(client, monkeypatch):
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{_closed_port()}/0")
    monkeypatch.setattr(cache_module, "_shared", None)  # get_cache() builds one on the dead URL
    h, elapsed = _health(client)
    assert h["status"] == "degraded"
    assert h["dependencies"]["redis"]["status"] == "down" and h["dependencies"]["redis"]["detail"]
    assert h["cache_hit_rate"] is None
    assert any(reason.startswith("redis is down") for reason in h["reasons"])
    assert h["dependencies"]["postgres"]["status"] == "ok" and h["outbox_backlog"] is not None
    assert elapsed < 1.0


def test_kafka_down_is_degraded_within_a_second(client, monkeypatch):
    monkeypatch.setenv("KAFKA_BROKERS", f"127.0.0.1:{_closed_port()}")
    monkeypatch.setattr(health_service, "_kafka", None)
    h, elapsed = _health(client)
    assert h["status"] == "degraded"
    assert h["dependencies"]["kafka"]["status"] == "down"
    assert h["kafka_consumer_lag"] == {} and h["dlq_count"] is None
    assert elapsed < 1.0
    # The failure is cached like a success (~2 s): a poll loop does not wait on the dead broker again.
    h, elapsed = _health(client)
    assert h["dependencies"]["kafka"]["status"] == "down" and elapsed < 0.5


def test_a_hanging_dependency_costs_one_budget_and_one_thread(client, monkeypatch):
    calls = []
    release = threading.Event()

    def hanging() -> health_service.ProbeResult:
        calls.append(1)
        release.wait(5)
        return health_service.ProbeResult(True)

    monkeypatch.setattr(health_service, "probe_schema_registry", hanging)
    try:
        for _ in range(3):
            h, elapsed = _health(client)
            assert elapsed < 1.0
            assert h["dependencies"]["schema_registry"]["status"] == "down"
            assert "no answer within" in h["dependencies"]["schema_registry"]["detail"]
            assert h["dependencies"]["postgres"]["status"] == "ok"
        assert len(calls) == 1  # joined, not started again (single flight)
    finally:
        release.set()


def test_kafka_figures_are_cached_for_about_two_seconds(client, monkeypatch):
    calls = []
    real = health_service.probe_kafka

    def counting() -> health_service.ProbeResult:
        calls.append(1)
        return real()

    monkeypatch.setattr(health_service, "probe_kafka", counting)
    first, _ = _health(client)
    second, _ = _health(client)
    assert len(calls) == 1 and first["kafka_consumer_lag"] == second["kafka_consumer_lag"]
    monkeypatch.setattr(health_service, "KAFKA_CACHE_SECONDS", 0.0)
    _health(client)
    assert len(calls) == 2


def test_targets_make_health_degraded(client, monkeypatch):
    # Recent dead letters are one of the reasons; a negative target makes "0 in the last hour" too many.
    monkeypatch.setattr(health_service, "TARGETS", health_service.Targets(dlq_recent=-1))
    h, _ = _health(client)
    assert h["status"] == "degraded"
    assert any("dead letters on events.dlq in the last 1 h" in r for r in h["reasons"]), h["reasons"]


def test_health_is_public_and_not_rate_limited(client):
    for _ in range(3):
        r = client.get("/api/health")
        assert r.status_code == 200 and "RateLimit-Limit" not in r.headers


def test_the_public_summary_has_the_figures_but_no_details_or_exception_text(client, user, monkeypatch):
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{_closed_port()}/0")
    monkeypatch.setattr(cache_module, "_shared", None)
    detailed, _ = _health(client)
    assert detailed["dependencies"]["redis"]["detail"] and detailed["reasons"]
    for headers in ({}, user.headers(scopes="miners:read"), {"Authorization": "Bearer not-a-token"}):
        public, _ = _health(client, headers)  # no token, a token without ops:read, an invalid one
        assert public["status"] == "degraded" and "reasons" not in public
        assert public["dependencies"]["redis"] == {"status": "down", "detail": None}
        assert all(d["detail"] is None for d in public["dependencies"].values())
        assert all(t["reason"] is None for t in public["connector_tasks"] or [])
        figures = ("outbox_backlog", "kafka_consumer_lag", "dlq_count", "cache_hit_rate", "connector_state")
        assert {k: public[k] for k in figures} == {k: detailed[k] for k in figures}
        text = str(public)
        assert "127.0.0.1" not in text and "Error" not in text and "hashinsight_api" not in text
