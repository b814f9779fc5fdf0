"""The API while a dependency is down: PostgreSQL unreachable is a 503 problem with Retry-After, never a 500;
Redis unreachable costs nothing but the cache and the rate limit (both fail open).

The dead dependency is real: a port on which nothing listens, so every connection is refused at once.
"""

from __future__ import annotations

import socket
import uuid

import pytest
from starlette.testclient import TestClient

from app.adapters import cache as cache_module
from app.adapters import db as app_db
from app.adapters.cache import Cache
from app.adapters.rate_limit import RateLimiter
from app.adapters.redis_client import make_redis
from app.entrypoints.app import create_app
from app.service_layer.users import UserDirectory


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again at once: connections to it are refused


@pytest.fixture
def database_down(monkeypatch):
    port = _dead_port()
    monkeypatch.setenv("DATABASE_URL", f"postgresql://hashinsight_api:x@127.0.0.1:{port}/hashinsight")
    app_db.api_engine.cache_clear()
    yield
    app_db.api_engine.cache_clear()


def _unavailable(r) -> dict:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["Retry-After"]) >= 1
    body = r.json()
    assert body["type"] == "urn:hashinsight:problem:dependency-unavailable"
    assert "database" in body["detail"] and "Idempotency-Key" in body["detail"]
    assert "127.0.0.1" not in r.text and "hashinsight_api" not in r.text  # no connection details leak
    return body


def test_writes_and_reads_answer_503_with_retry_after_while_postgres_is_unreachable(database_down, user):
    app = create_app(validate_responses=True, rate_limiter=RateLimiter(enabled=False), user_directory=UserDirectory())
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = {**user.headers(idempotency_key=str(uuid.uuid4())), "Content-Type": "application/json"}
        _unavailable(client.post("/api/miners", json={"model_id": "antminer-s21", "label": "outage"},
                                 headers=headers))
        _unavailable(client.get("/api/portfolio", headers=user.headers()))
        _unavailable(client.get("/api/miners", headers=user.headers()))
        health = client.get("/api/health")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert health.json()["dependencies"]["postgres"]["status"] == "down"


def test_the_same_write_succeeds_once_postgres_is_back(user, admin_db, monkeypatch):
    """The client's retry after a 503, with the same Idempotency-Key, is applied exactly once."""
    key = str(uuid.uuid4())
    headers = {**user.headers(idempotency_key=key), "Content-Type": "application/json"}
    body = {"model_id": "antminer-s21", "label": "retried"}
    app = create_app(validate_responses=True, rate_limiter=RateLimiter(enabled=False), user_directory=UserDirectory())
    with TestClient(app, raise_server_exceptions=False) as client:
        monkeypatch.setenv("DATABASE_URL", f"postgresql://hashinsight_api:x@127.0.0.1:{_dead_port()}/hashinsight")
        app_db.api_engine.cache_clear()
        _unavailable(client.post("/api/miners", json=body, headers=headers))
        monkeypatch.undo()
        app_db.api_engine.cache_clear()
        first = client.post("/api/miners", json=body, headers=headers)
        again = client.post("/api/miners", json=body, headers=headers)
    assert first.status_code == 201 and again.status_code == 201, (first.text, again.text)
    assert again.json()["id"] == first.json()["id"]
    assert admin_db.one("SELECT count(*) FROM miners WHERE tenant_id = %s AND label = 'retried'", user.tenant_id) == 1
    assert admin_db.one("SELECT count(*) FROM event_outbox WHERE tenant_id = %s", user.tenant_id) == 1


def test_redis_unreachable_costs_only_the_cache_and_the_rate_limit(user, monkeypatch):
    dead = f"redis://127.0.0.1:{_dead_port()}/0"
    monkeypatch.setenv("REDIS_URL", dead)
    monkeypatch.setattr(cache_module, "_shared", Cache(client=make_redis(dead)))
    app = create_app(validate_responses=True, rate_limiter=RateLimiter(client=make_redis(dead), enabled=True),
                     user_directory=UserDirectory())
    with TestClient(app, raise_server_exceptions=False) as client:
        created = client.post("/api/miners", json={"model_id": "antminer-s21", "label": "no cache"},
                              headers={**user.headers(), "Content-Type": "application/json"})
        assert created.status_code == 201, created.text
        page = client.get("/api/portfolio", headers=user.headers())
        assert page.status_code == 200, page.text
        assert page.json()["miners_total"] == 1  # computed from the database, nothing cached
        health = client.get("/api/health")
        assert health.json()["dependencies"]["redis"]["status"] == "down"
