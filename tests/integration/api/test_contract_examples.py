"""Every request example of contracts/openapi.yaml succeeds against a freshly seeded system, as demo-user-1.

The curl examples of docs/api-examples.md are built from the same examples (tools/api_docs.py), so this is
what a reader who copies them gets. Run in document order, once each, on the tests' freshly seeded database.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tools.api_docs import example_request
from tools.contracts_check import (
    CONTRACTS_DIR,
    iter_operations,
    load_yaml,
    success_response,
)

DOC = load_yaml(CONTRACTS_DIR / "openapi.yaml")
OPERATIONS = list(iter_operations(DOC))


def _request(op, token: str) -> dict[str, Any]:
    """The request the curl of docs/api-examples.md sends (tools.api_docs.example_request), with a real token."""
    example = example_request(DOC, op)
    headers = {"Authorization": f"Bearer {token}", **dict(example.headers)}
    request: dict[str, Any] = {"method": example.method, "url": example.path, "params": dict(example.query),
                               "headers": headers}
    if example.media_type == "application/x-www-form-urlencoded":
        # The example token is a placeholder (the curl uses $TOKEN): post a real one.
        request["data"] = {k: (token if k == "token" else v) for k, v in example.body.items()}
    elif example.media_type is not None:
        request["content"] = json.dumps(example.body)
        headers["Content-Type"] = example.media_type
    return request


@pytest.fixture
def demo_token(token) -> str:
    return token("demo-user-1", "demo-tenant")


def test_there_is_an_example_run_for_every_operation():
    assert {op.spec["operationId"] for op in OPERATIONS} >= {
        "create_miner", "change_miner_status", "bulk_import_miners", "get_forecast", "execute_trade", "get_health",
        "analytics_main", "list_miners", "get_miner", "get_portfolio", "list_miner_models",
    }


def _is_stream(op) -> bool:
    _, response = success_response(DOC, op)
    return "text/event-stream" in (response.get("content") or {})


def _first_event(server, request: dict[str, Any]) -> tuple[int, str]:
    """A stream never ends (the in-process client would wait forever): read it over HTTP up to its first event."""
    import httpx

    with httpx.Client(base_url=server.base_url, timeout=10) as c, \
            c.stream(request["method"], request["url"], headers=request["headers"]) as resp:
        first = ""
        for line in resp.iter_lines():
            if line.startswith("event: "):
                first = line[7:]
                break
        return resp.status_code, first


@pytest.mark.parametrize("op", OPERATIONS, ids=[op.spec["operationId"] for op in OPERATIONS])
def test_the_example_succeeds(op, unlimited_client, demo_token, request):
    expected, _ = success_response(DOC, op)
    if _is_stream(op):
        status, first = _first_event(request.getfixturevalue("server"), _request(op, demo_token))
        assert (status, first) == (int(expected), "ready"), f"{op.method.upper()} {op.path}: {status} {first!r}"
        return
    resp = unlimited_client.request(**_request(op, demo_token), follow_redirects=False)
    assert resp.status_code == int(expected), f"{op.method.upper()} {op.path}: {resp.status_code} {resp.text[:500]}"
