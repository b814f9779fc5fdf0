"""Per-user rate limits by subscription plan: 429 with Retry-After and RateLimit-*; headers on success."""

from __future__ import annotations

from starlette.testclient import TestClient

from app.adapters.rate_limit import RateLimiter
from app.entrypoints.app import create_app
from app.service_layer.users import UserDirectory


def _tiny_plan(admin_db, user, rpm: int = 1, burst: int = 2) -> None:
    admin_db.execute("INSERT INTO users (id, tenant_id) VALUES (%s, %s)", user.user_id, user.tenant_id)
    admin_db.execute(
        "INSERT INTO user_subscriptions (tenant_id, user_id, plan, requests_per_minute, burst)"
        " VALUES (%s, %s, 'free', %s, %s)", user.tenant_id, user.user_id, rpm, burst)


def test_over_the_plan_limit_is_429_with_headers(client, user, admin_db):
    _tiny_plan(admin_db, user)
    h = user.headers("miners:read")
    ok = [client.get("/api/miners", headers=h) for _ in range(2)]
    assert [r.status_code for r in ok] == [200, 200]
    assert ok[0].headers["RateLimit-Limit"] == "1"
    assert [r.headers["RateLimit-Remaining"] for r in ok] == ["1", "0"]
    r = client.get("/api/miners", headers=h)
    assert r.status_code == 429
    assert r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["Retry-After"]) >= 1
    assert (r.headers["RateLimit-Limit"], r.headers["RateLimit-Remaining"]) == ("1", "0")
    assert int(r.headers["RateLimit-Reset"]) >= int(r.headers["Retry-After"])
    assert r.json()["detail"].startswith("Rate limit of 1 requests per minute (plan free) exceeded; retry in")
    # writes are limited too, and a limited write writes nothing
    w = client.post("/api/miners", json={"model_id": "antminer-s21"}, headers=user.headers())
    assert w.status_code == 429
    assert admin_db.one("SELECT count(*) FROM miners WHERE tenant_id = %s", user.tenant_id) == 0


def test_default_free_plan_allows_a_burst_of_20(client, user):
    h = user.headers("miners:read")
    codes = [client.get("/api/miner-models", headers=h).status_code for _ in range(21)]
    assert codes[:20] == [200] * 20 and codes[20] == 429


def test_limits_are_per_user(client, user, make_user, admin_db):
    _tiny_plan(admin_db, user, burst=1)
    assert client.get("/api/miners", headers=user.headers()).status_code == 200
    assert client.get("/api/miners", headers=user.headers()).status_code == 429
    neighbour = make_user(tenant_id=user.tenant_id)
    assert client.get("/api/miners", headers=neighbour.headers()).status_code == 200


def test_bad_requests_count_against_the_limit(client, user, admin_db):
    _tiny_plan(admin_db, user, burst=1)
    assert client.get("/api/miners?limit=0", headers=user.headers()).status_code == 400
    assert client.get("/api/miners", headers=user.headers()).status_code == 429


def test_public_endpoints_are_not_limited_per_user(client):
    # No token, no user: the spec itself (and /api/health, /analytics/login) carry no RateLimit headers.
    r = client.get("/api/openapi.json")
    assert r.status_code == 200 and "RateLimit-Limit" not in r.headers


def test_unauthenticated_requests_get_401_not_429(client, user, admin_db):
    _tiny_plan(admin_db, user, burst=1)
    for _ in range(3):
        assert client.get("/api/miners").status_code == 401


def test_rate_limit_disabled(api_db, user, admin_db):
    _tiny_plan(admin_db, user, burst=1)
    app = create_app(rate_limiter=RateLimiter(enabled=False), user_directory=UserDirectory())
    with TestClient(app) as c:
        responses = [c.get("/api/miners", headers=user.headers()) for _ in range(5)]
    assert {r.status_code for r in responses} == {200}
    assert "RateLimit-Limit" not in responses[0].headers


def test_rate_limit_enabled_env_flag(api_db, user, admin_db, monkeypatch):
    """RATE_LIMIT_ENABLED=0 is read by the process-wide limiter that create_app() uses by default."""
    import app.adapters.rate_limit as rl

    monkeypatch.setenv("RATE_LIMIT_ENABLED", "0")
    monkeypatch.setattr(rl, "_shared", None)
    _tiny_plan(admin_db, user, burst=1)
    with TestClient(create_app(user_directory=UserDirectory())) as c:
        assert {c.get("/api/miners", headers=user.headers()).status_code for _ in range(3)} == {200}
