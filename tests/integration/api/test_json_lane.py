"""The JSON operations run in the lane (app/entrypoints/json_lane.py), not through Flask; the rest still does."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from app.entrypoints import json_lane
from app.entrypoints.wsgi_bridge import BufferedWSGIBridge


def _count_flask_calls(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = BufferedWSGIBridge._call_wsgi

    def counting(self, environ):
        seen.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        return real(self, environ)

    monkeypatch.setattr(BufferedWSGIBridge, "_call_wsgi", counting)
    return seen


def test_json_operations_skip_flask_and_the_login_form_still_uses_it(client, user, monkeypatch):
    flask_calls = _count_flask_calls(monkeypatch)
    created = client.post("/api/miners", json={"model_id": "antminer-s21", "label": "lane"}, headers=user.headers())
    assert created.status_code == 201 and created.headers["content-type"] == "application/json"
    assert created.headers["location"] == f"/api/miners/{created.json()['id']}"
    assert client.get(created.headers["location"], headers=user.headers()).json() == created.json()
    missing = client.get("/api/miners/00000000-0000-4000-8000-000000000000", headers=user.headers())
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["request_id"] == missing.headers["x-request-id"]
    assert flask_calls == []
    form = client.get("/analytics/login")
    assert form.status_code == 200 and form.headers["content-type"].startswith("text/html")
    assert flask_calls == ["GET /analytics/login"]


def test_the_lane_modules_never_import_flask():
    """A lane handler has no Flask request to read: its module (and what it imports from app.entrypoints) must not
    use Flask."""
    for name in json_lane.JSON_MODULES:
        path = Path(importlib.import_module(name).__file__)
        for node in ast.walk(ast.parse(path.read_text())):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(m.split(".")[0] in ("flask", "werkzeug") for m in modules), f"{name} imports {modules}"
