"""The analytics page's plan and upcoming-maintenance panel."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


def _at(days: int, hour: int) -> str:
    day = datetime.now(timezone.utc).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")


def test_the_page_shows_the_plan_and_upcoming_maintenance(unlimited_client, user):
    headers = user.headers()
    miner = unlimited_client.post("/api/miners", json={"model_id": "antminer-s21", "label": "rack 12"},
                                  headers=headers).json()["id"]
    for _ in range(3):  # a miss, then a fresh hit the handler renders and keeps, then the kept page
        before = unlimited_client.get("/analytics/main", headers=headers)
    assert before.status_code == 200 and "Plan <strong>free</strong>" in before.text
    assert "No maintenance scheduled" in before.text
    assert unlimited_client.put("/api/subscription", json={"plan": "pro"}, headers=headers).status_code == 200
    resp = unlimited_client.post("/api/ops/maintenance", headers=headers, json={
        "miner_id": miner, "starts_at": _at(2, 9), "ends_at": _at(2, 11), "reason": "PSU swap"})
    assert resp.status_code == 201, resp.text
    page = unlimited_client.get("/analytics/main", headers=headers)
    assert "Plan <strong>pro</strong>" in page.text and "600 requests/min" in page.text
    assert 'id="maintenance"' in page.text and "rack 12" in page.text and "PSU swap" in page.text
    assert page.text.index('id="live"') < page.text.index("plan-and-maintenance") < page.text.index("</main>")
    assert before.text.split('data-version="')[1][:80] != page.text.split('data-version="')[1][:80]


def test_windows_need_ops_read_on_the_page(unlimited_client, user):
    page = unlimited_client.get("/analytics/main", headers=user.headers(scopes="portfolio:read"))
    assert page.status_code == 200
    assert "Maintenance windows need the <code>ops:read</code> scope" in page.text
