"""Writes refused while the bus is behind, and taken again once it has caught up: the real app reading the lag the
page's worker writes to the stack's Redis (app/adapters/pipeline_lag.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from app.adapters.pipeline_lag import EVERY_S, KEY
from app.adapters.rate_limit import RateLimiter
from app.adapters.redis_client import get_redis
from app.entrypoints.app import create_app
from app.service_layer.users import UserDirectory


@pytest.fixture
def lag_key() -> Iterator[None]:
    yield
    get_redis().delete(KEY)


def _post(client: TestClient, headers: dict[str, str], label: str):
    return client.post("/api/miners", json={"model_id": "antminer-s21", "label": label}, headers=headers)


def _settle(client: TestClient, headers: dict[str, str]) -> None:
    """A write the contract refuses (no body) lets the guard read the lag, writing nothing; then its read lands."""
    client.post("/api/miners", headers=headers)
    time.sleep(EVERY_S + 0.15)
    client.post("/api/miners", headers=headers)
    time.sleep(0.1)


def test_writes_wait_while_the_bus_is_behind(api_db, user, admin_db, lag_key):
    app = create_app(validate_responses=True, rate_limiter=RateLimiter(enabled=False), user_directory=UserDirectory())
    headers = user.headers()
    redis = get_redis()
    with TestClient(app, raise_server_exceptions=False) as client:
        redis.set(KEY, "2500", px=30_000)  # 2.5 s behind, with a 1 s threshold: every write waits
        _settle(client, headers)
        refused = _post(client, headers, "refused")
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.headers["retry-after"] == "3"
        problem = refused.json()
        assert problem["type"] == "urn:hashinsight:problem:pipeline-behind" and problem["status"] == 503
        assert "2.5 s" in problem["detail"] and "Idempotency-Key" in problem["detail"]
        assert client.get("/api/portfolio", headers=headers).status_code == 200  # reads go on
        assert admin_db.one("SELECT count(*) FROM miners WHERE tenant_id = %s", user.tenant_id) == 0

        redis.set(KEY, "120", px=30_000)  # caught up
        _settle(client, headers)
        taken = _post(client, headers, "taken")
        assert taken.status_code == 201, taken.text

        redis.delete(KEY)  # the worker stopped, or the key expired: no lag known, nothing refused
        _settle(client, headers)
        assert _post(client, headers, "taken too").status_code == 201
    assert admin_db.one("SELECT count(*) FROM miners WHERE tenant_id = %s", user.tenant_id) == 2
    assert admin_db.one("SELECT count(*) FROM event_outbox WHERE tenant_id = %s", user.tenant_id) == 2
