"""problem+json for every error (Connexion's own included), tokens, request ids, and no 500 for bad input."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from starlette.testclient import TestClient

from app.adapters.tokens import keyring_from_settings
from app.entrypoints.app import create_app
from app.service_layer import miners as miners_service

PROBLEM = "application/problem+json"


def _problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status and body["title"] and body["type"]
    assert body["request_id"] == r.headers["X-Request-ID"]
    return body


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


# --- 401 / 403 -----------------------------------------------------------------------------------------------


def test_no_token_is_401(client):
    body = _problem(client.get("/api/miners"), 401)
    assert body["detail"] == "No authorization token provided"


@pytest.mark.parametrize("case", ["expired", "wrong_audience", "wrong_issuer", "alg_none", "bad_signature",
                                  "garbage", "hs512"])
def test_invalid_tokens_are_401(client, user, case):
    now = int(time.time())
    claims = {"sub": user.user_id, "tenant_id": user.tenant_id, "scope": "miners:read", "iat": now,
              "exp": now + 600, "iss": "hashinsight", "aud": "hashinsight-api"}
    secret = keyring_from_settings().active_secret
    if case == "expired":
        token = user.token("miners:read", ttl_seconds=60, now=time.time() - 3600)
    elif case == "wrong_audience":
        token = jwt.encode({**claims, "aud": "someone-else"}, secret, algorithm="HS256")
    elif case == "wrong_issuer":
        token = jwt.encode({**claims, "iss": "evil"}, secret, algorithm="HS256")
    elif case == "alg_none":
        token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    elif case == "bad_signature":
        token = jwt.encode(claims, "not-the-secret-0123456789abcdef0123", algorithm="HS256")
    elif case == "hs512":
        token = jwt.encode(claims, secret, algorithm="HS512")
    else:
        token = "abc.def.ghi"
    r = client.get("/api/miners", headers={"Authorization": f"Bearer {token}"})
    body = _problem(r, 401)
    assert body["detail"].startswith("Invalid token")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_missing_scope_is_403(client, user):
    r = client.post("/api/miners", json={"model_id": "antminer-s21"}, headers=user.headers("miners:read"))
    assert _problem(r, 403)["detail"] == "Missing scope: miners:write"
    r = client.post("/api/treasury/execute", json={"side": "buy", "amount_btc": 1},
                    headers=user.headers("miners:write"))
    assert _problem(r, 403)["detail"] == "Missing scope: treasury:trade"


def test_user_of_another_tenant_is_403(client, user, token):
    assert client.get("/api/miners", headers=user.headers()).status_code == 200  # provisions user in its tenant
    # A validly signed token naming the same user id in another tenant must not reach that tenant's data.
    r = client.get("/api/miners", headers={"Authorization": "Bearer " + token(user.user_id, "t-other-tenant")})
    body = _problem(r, 403)
    assert body["type"] == "urn:hashinsight:problem:tenant-mismatch"


# --- 400 / 404 / 405 / 413 / 415 --------------------------------------------------------------------------------


def test_bad_json_bodies_are_400_not_500(client, user):
    h = {**user.headers(), "Content-Type": "application/json"}
    for raw in [b"{", b'{"model_id": NaN}', b'{"model_id": "antminer-s21", "hashrate_ths": 1e999}', b"\xff\xfe\x00",
                b"[1,2]", b"null", b'"x"', b"[" * 60_000]:  # under the 64 KiB limit
        r = client.post("/api/miners", content=raw, headers=h)
        assert r.status_code == 400, (raw[:30], r.status_code, r.text)
        assert r.headers["content-type"] == PROBLEM


def test_empty_body_is_400(client, user):
    r = client.post("/api/miners", content=b"", headers={**user.headers(), "Content-Type": "application/json"})
    _problem(r, 400)


def test_extra_query_parameter_is_400_strict_validation(client, user):
    body = _problem(client.get("/api/miners?colour=red", headers=user.headers()), 400)
    assert "colour" in body["detail"]


def test_bad_idempotency_key_header_is_400(client, user):
    r = client.post("/api/miners", json={"model_id": "antminer-s21"},
                    headers={**user.headers(), "Idempotency-Key": "x" * 129})
    _problem(r, 400)


def test_unknown_path_404_and_wrong_method_405(client, user):
    body = _problem(client.get("/api/nothing-here", headers=user.headers()), 404)
    assert body["detail"] == "No resource at /api/nothing-here"
    body = _problem(client.delete("/api/miners", headers=user.headers()), 405)
    assert body["detail"] == "Method DELETE is not allowed on /api/miners"


def test_wrong_content_type_is_415(client, user):
    r = client.post("/api/miners", content=b"model_id=antminer-s21",
                    headers={**user.headers(), "Content-Type": "text/plain"})
    _problem(r, 415)


def test_body_over_the_size_limit_is_413(api_db, user):
    small = create_app(max_body_bytes=1024)
    with TestClient(small, raise_server_exceptions=False) as c:
        r = c.post("/api/miners", json={"model_id": "antminer-s21", "label": "x" * 2000}, headers=user.headers())
        body = _problem(r, 413)
        assert body["type"] == "urn:hashinsight:problem:body-too-large"

        def chunks():  # no Content-Length: counted while streaming
            for _ in range(10):
                yield b" " * 512

        r = c.post("/api/miners", content=chunks(), headers={**user.headers(), "Content-Type": "application/json"})
        _problem(r, 413)
        # A chunked body under the limit is read and validated like any other.
        r = c.post("/api/miners", content=iter([b'{"model_id": ', b'"antminer-s21"}']),
                   headers={**user.headers(), "Content-Type": "application/json"})
        assert r.status_code == 201, r.text


# --- 500 -----------------------------------------------------------------------------------------------------


def test_unexpected_exception_is_a_500_problem_with_the_request_id_and_a_logged_traceback(
    client, user, monkeypatch, caplog
):
    def boom(*_a, **_k):
        raise RuntimeError("secret internal detail: password=hunter2")

    monkeypatch.setattr(miners_service, "list_miners", boom)
    r = client.get("/api/miners", headers={**user.headers(), "X-Request-ID": "trace-me-500"})
    body = _problem(r, 500)
    assert body["request_id"] == "trace-me-500"
    assert "trace-me-500" in body["detail"]
    assert "hunter2" not in r.text and "RuntimeError" not in r.text
    logged = [rec for rec in caplog.records if "trace-me-500" in rec.getMessage()]
    assert logged and logged[0].exc_info is not None


# --- request ids ---------------------------------------------------------------------------------------------


def test_request_id_is_echoed_or_generated(client, user):
    r = client.get("/api/miner-models", headers={**user.headers(), "X-Request-ID": "abc-123"})
    assert r.headers["X-Request-ID"] == "abc-123"
    r = client.get("/api/miner-models", headers={**user.headers(), "X-Request-ID": "bad id with spaces"})
    assert r.headers["X-Request-ID"] != "bad id with spaces" and len(r.headers["X-Request-ID"]) == 32
    r = client.get("/api/openapi.json")
    assert r.status_code == 200 and len(r.headers["X-Request-ID"]) == 32


def test_spec_and_swagger_ui_are_served(client):
    spec = client.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.0") and "/api/miners" in spec["paths"]
    r = client.get("/api/ui/")
    assert r.status_code == 200 and "swagger" in r.text.lower()
