"""The AsyncAPI HTML docs at /api/events/ (generated/asyncapi-html/ from contracts/asyncapi.yaml)."""

from __future__ import annotations

import re


def test_event_docs_are_served_beside_swagger_ui(client):
    assert client.get("/api/events", follow_redirects=False).headers["location"] == "/api/events/"
    page = client.get("/api/events/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<title>HashInsight event bus" in page.text
    assert "events.miner" in page.text and "events.dlq" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for asset in re.findall(r'(?:src|href)="((?:js|css)/[^"]+)"', page.text):
        assert client.get("/api/events/" + asset).status_code == 200, asset
    # Links to other sites are fine; loading a script, style or image from one is not.
    assert not re.search(r'src="https?://|<link[^>]+href="https?://', page.text), "the docs load nothing elsewhere"


def test_event_docs_serve_nothing_outside_their_directory(client):
    for path in ("/api/events/../pyproject.toml", "/api/events/%2e%2e/api.py", "/api/events/missing.html"):
        r = client.get(path)
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json", path
