"""bearer_info / cookie_info, directly and inside a real (in-process) Connexion 3 app."""

from __future__ import annotations

import time
from typing import Any

import connexion
import pytest
from connexion.exceptions import OAuthProblem, OAuthScopeProblem
from connexion.resolver import Resolver

from app.adapters.tokens import encode_token
from app.entrypoints.http import auth

SECRET = "auth-test-secret-" + "0123456789abcdef" * 3


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.delenv("JWT_KEYS", raising=False)
    monkeypatch.delenv("JWT_ACTIVE_KID", raising=False)


def token(scopes: str = "miners:write portfolio:read", **kw: Any) -> str:
    return encode_token("u1", "t1", scopes, token_id="jti-1", **kw)


def test_bearer_info_returns_what_connexion_puts_in_context() -> None:
    assert auth.bearer_info(token(), required_scopes=["miners:write"]) == {
        "sub": "u1", "uid": "u1", "tenant_id": "t1", "scope": ["miners:write", "portfolio:read"], "jti": "jti-1"}


def test_bad_token_is_oauth_problem_401() -> None:
    with pytest.raises(OAuthProblem) as info:
        auth.bearer_info(token(ttl_seconds=1, now=time.time() - 100))
    assert info.value.status == 401
    assert info.value.detail == "Invalid token: token has expired"
    assert info.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_missing_scope_is_oauth_scope_problem_403() -> None:
    with pytest.raises(OAuthScopeProblem) as info:
        auth.bearer_info(token("miners:read"), required_scopes=["miners:write", "miners:read"])
    assert info.value.status_code == 403
    assert info.value.detail == "Missing scope: miners:write"
    assert info.value.required_scopes == ["miners:write", "miners:read"]
    assert info.value.token_scopes == ["miners:read"]


def test_cookie_info_checks_the_same_way() -> None:
    assert auth.cookie_info(token(), required_scopes=["portfolio:read"])["sub"] == "u1"
    with pytest.raises(OAuthProblem, match="session cookie"):
        auth.cookie_info("not-a-jwt", required_scopes=["portfolio:read"])
    with pytest.raises(OAuthScopeProblem):
        auth.cookie_info(token("miners:read"), required_scopes=["portfolio:read"])


def test_principal_round_trip() -> None:
    p = auth.principal_from_token_info(auth.bearer_info(token()))
    assert (p.user_id, p.tenant_id, p.scopes, p.token_id) == (
        "u1", "t1", frozenset({"miners:write", "portfolio:read"}), "jti-1")


# --- inside Connexion ---------------------------------------------------------------------------------------

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "auth test", "version": "1"},
    "paths": {
        "/write": {"post": {"operationId": "write", "security": [{"bearerAuth": ["miners:write"]}],
                            "responses": {"200": {"description": "ok"}}}},
        "/page": {"get": {"operationId": "page",
                          "security": [{"bearerAuth": ["portfolio:read"]}, {"cookieAuth": ["portfolio:read"]}],
                          "responses": {"200": {"description": "ok"}}}},
    },
    "components": {"securitySchemes": {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                       "x-bearerInfoFunc": "app.entrypoints.http.auth.bearer_info"},
        "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "hi_session",
                       "x-apikeyInfoFunc": "app.entrypoints.http.auth.cookie_info"},
    }},
}


def write(user: str, token_info: dict[str, Any]) -> dict[str, Any]:
    # Connexion injects context["user"] and context["token_info"] into arguments of those names.
    return {"user": user, "tenant": token_info["tenant_id"], "scope": token_info["scope"]}


def page() -> dict[str, Any]:
    from connexion.context import context  # the other way to read it, anywhere during the request

    return {"user": context["user"], "tenant": context["token_info"]["tenant_id"]}


def make_client(security_map: dict[str, Any] | None) -> Any:
    app = connexion.FlaskApp(__name__, security_map=security_map)
    handlers = {"write": write, "page": page}
    app.add_api(SPEC, resolver=Resolver(function_resolver=lambda op_id: handlers[op_id]))
    return app.test_client()


@pytest.fixture(scope="module")
def client() -> Any:
    return make_client(auth.SECURITY_MAP)


def bearer(t: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {t}"}


def test_app_accepts_a_valid_token(client: Any) -> None:
    r = client.post("/write", headers=bearer(token()))
    assert r.status_code == 200
    assert r.json() == {"user": "u1", "tenant": "t1", "scope": ["miners:write", "portfolio:read"]}


def test_app_401_without_or_with_bad_token(client: Any) -> None:
    r = client.post("/write")
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "No authorization token provided"
    r = client.post("/write", headers=bearer(token() + "x"))
    assert r.status_code == 401
    assert r.json()["detail"] == "Invalid token: token signature does not verify"
    assert r.headers["www-authenticate"] == 'Bearer realm="hashinsight", error="invalid_token"'


def test_app_403_on_missing_scope(client: Any) -> None:
    r = client.post("/write", headers=bearer(token("portfolio:read")))
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "Missing scope: miners:write"
    assert r.json()["title"] == "Forbidden"


def test_app_cookie_alternative(client: Any) -> None:
    client.cookies.set("hi_session", token("portfolio:read"))
    try:
        r = client.get("/page")
        assert r.status_code == 200 and r.json() == {"user": "u1", "tenant": "t1"}
        client.cookies.set("hi_session", token("miners:read"))
        assert client.get("/page").status_code == 403
    finally:
        client.cookies.clear()


def test_why_security_map_is_needed() -> None:
    # Connexion 3.3's stock bearer handler never passes required_scopes to x-bearerInfoFunc, so without
    # SECURITY_MAP a token lacking miners:write gets through. If this starts failing, Connexion fixed it.
    stock = make_client(None)
    assert stock.post("/write", headers=bearer(token("portfolio:read"))).status_code == 200
