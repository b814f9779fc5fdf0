"""contracts/openapi.yaml loads in Connexion 3 with generated/routes.py: URLs, 501 stubs, scopes reach auth.

The handler package and the token functions are replaced by in-memory fakes, so the test needs no app code
and no services; everything else (spec, resolver, security map, Swagger UI options) is the real thing.
"""

from __future__ import annotations

import copy
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import connexion
import pytest
import schemathesis
import yaml
from connexion.exceptions import OAuthProblem, OAuthScopeProblem, ResolverError

from generated import routes

SPEC = yaml.safe_load(routes.SPEC_FILE.read_text())
AUTH_MODULE = "hashinsight_test_fake_auth"
HANDLERS = "hashinsight_test_fake_handlers"
SEEN_SCOPES: list[tuple[str, Any]] = []


def bearer_info(token: str, required_scopes: list[str] | None = None) -> dict[str, Any]:
    """Fake x-bearerInfoFunc: the token is the space-separated scope list."""
    SEEN_SCOPES.append(("bearer", required_scopes))
    if token == "invalid":
        raise OAuthProblem(detail="Provided token is not valid")
    granted = set(token.split(","))
    if required_scopes is None or not set(required_scopes) <= granted:
        # Fails closed: a handler that gets no scopes must not let the request through.
        raise OAuthScopeProblem(required_scopes=required_scopes or [], token_scopes=sorted(granted))
    return {"sub": "demo-user-1", "tenant_id": "demo-tenant", "scope": " ".join(sorted(granted))}


def cookie_info(api_key: str, required_scopes: list[str] | None = None) -> dict[str, Any]:
    SEEN_SCOPES.append(("cookie", required_scopes))
    return {"sub": "demo-user-1", "tenant_id": "demo-tenant", "scope": api_key.replace(",", " ")}


def get_health() -> tuple[dict[str, Any], int, dict[str, str]]:
    """The one implemented fake handler: answers the spec's own example (as JSON: the operation also declares
    problem+json for its 429, so the handler names its content type)."""
    media = SPEC["paths"]["/api/health"]["get"]["responses"]["200"]["content"]["application/json"]
    return media["example"], 200, {"Content-Type": "application/json"}


def fake_spec() -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    schemes = spec["components"]["securitySchemes"]
    schemes["bearerAuth"]["x-bearerInfoFunc"] = f"{AUTH_MODULE}.bearer_info"
    schemes["cookieAuth"]["x-apikeyInfoFunc"] = f"{AUTH_MODULE}.cookie_info"
    return spec


@pytest.fixture(scope="module")
def fakes() -> Iterator[None]:
    auth = types.ModuleType(AUTH_MODULE)
    auth.bearer_info = bearer_info  # type: ignore[attr-defined]
    auth.cookie_info = cookie_info  # type: ignore[attr-defined]
    package = types.ModuleType(HANDLERS)
    package.__path__ = []  # a package with no submodules on disk: every other handler module is missing
    health = types.ModuleType(f"{HANDLERS}.health")
    health.get_health = get_health  # type: ignore[attr-defined]
    saved = {name: sys.modules.get(name) for name in (AUTH_MODULE, HANDLERS, f"{HANDLERS}.health")}
    sys.modules.update({AUTH_MODULE: auth, HANDLERS: package, f"{HANDLERS}.health": health})
    yield
    for name, module in saved.items():
        if module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module


@pytest.fixture(scope="module")
def client(fakes: None) -> Any:
    app = connexion.FlaskApp(__name__)
    routes.add_api(app, fake_spec(), resolver=routes.resolver(HANDLERS), validate_responses=True)
    return app.test_client()


def bearer(scopes: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {scopes}"}


def test_house_urls(client: Any) -> None:
    spec = client.get("/api/openapi.json")
    assert spec.status_code == 200
    assert "/api/miners" in spec.json()["paths"] and "/analytics/main" in spec.json()["paths"]
    ui = client.get("/api/ui/")
    assert ui.status_code == 200 and "swagger" in ui.text.lower()
    assert client.get("/openapi.json").status_code == 404


def test_unimplemented_operation_answers_501_problem(client: Any) -> None:
    body = {"model_id": "antminer-s21"}
    response = client.post("/api/miners", json=body, headers=bearer("miners:write"))
    assert response.status_code == 501
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 501 and "create_miner" in problem["detail"]
    assert f"{HANDLERS}.miners.create_miner" in problem["detail"]


def test_implemented_operation_is_routed(client: Any) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_bearer_scopes_reach_the_token_function(client: Any) -> None:
    SEEN_SCOPES.clear()
    client.patch(
        "/api/miners/7d1c1f8e-2f5b-4b8e-9a53-0c6f4b8a1d01/status",
        json={"status": "idle"},
        headers=bearer("miners:write"),
    )
    assert SEEN_SCOPES == [("bearer", ["miners:write"])]


def test_missing_scope_is_403_and_no_token_is_401(client: Any) -> None:
    forbidden = client.get("/api/portfolio", headers=bearer("miners:read"))
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"] == "application/problem+json"
    assert client.get("/api/portfolio").status_code == 401
    assert client.get("/api/portfolio", headers=bearer("invalid")).status_code == 401


def test_cookie_auth_on_analytics(client: Any) -> None:
    SEEN_SCOPES.clear()
    response = client.get("/analytics/main", headers={"Cookie": "hi_session=portfolio:read"})
    assert response.status_code == 501  # authenticated, then the stub
    assert SEEN_SCOPES == [("cookie", ["portfolio:read"])]


def test_bad_input_is_400_problem(client: Any) -> None:
    response = client.post("/api/miners", json={"model_id": "antminer-s21", "bogus": 1}, headers=bearer("miners:write"))
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    bad_id = client.get("/api/miners/not-a-uuid", headers=bearer("miners:read"))
    assert bad_id.status_code == 400


def test_unknown_operation_id_fails_at_startup(fakes: None) -> None:
    spec = fake_spec()
    spec["paths"]["/api/portfolio"]["get"]["operationId"] = "get_everything"
    app = connexion.FlaskApp(__name__)
    routes.add_api(app, spec, resolver=routes.resolver(HANDLERS))
    # Connexion 3 builds its routes when the app starts (here: when the test client starts it).
    with pytest.raises(ResolverError, match="get_everything"):
        app.test_client().get("/api/health")


def test_broken_handler_module_is_not_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "hashinsight_test_broken_handlers"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "miners.py").write_text("import hashinsight_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="hashinsight_no_such_dependency"):
        routes.load_handler("create_miner", "hashinsight_test_broken_handlers")
    handler, implemented = routes.load_handler("get_portfolio", "hashinsight_test_broken_handlers")
    assert not implemented and handler.__name__ == "get_portfolio"


def test_schemathesis_loads_every_operation() -> None:
    schema = schemathesis.openapi.from_dict(copy.deepcopy(SPEC))
    labels = set()
    for result in schema.get_all_operations():
        labels.add(result.ok().label)
    assert labels == {f"{op.method} {op.path}" for op in routes.OPERATIONS.values()}
