"""GET /api/intelligence/forecast against the real PostgreSQL and Redis: forecast_daily after refresh_forecast,
the read-path computation when it has no rows, stale-while-revalidate through the endpoint, `days`, scopes."""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta, timezone

import pytest

from app.adapters.cache import forecast_key
from app.domain.mining import round_btc, round_usd
from app.service_layer import read_models
from tests.integration.api.read_support import S19_PRO, S21, add_miners, private_cache, refresh

SCOPES = "intel:read portfolio:read"


@pytest.fixture
def cache(monkeypatch):
    with private_cache(monkeypatch) as c:
        yield c


def _get(client, user, query: str = "", scopes: str = SCOPES):
    r = client.get(f"/api/intelligence/forecast{query}", headers=user.headers(scopes))
    assert r.status_code == 200, r.text
    return r.json(), r.headers["X-Cache"]


def _today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


def test_without_forecast_rows_it_is_computed_on_read_and_not_written(client, user, admin_db, cache):
    add_miners(admin_db, user, [(S21, "active"), (S19_PRO, "idle")])
    doc, status = _get(client, user)
    assert status == "miss" and doc["stale"] is False
    assert len(doc["days"]) == 30 and doc["assumptions"]["horizon_days"] == 30  # the contract's default
    assert doc["days"][0]["day"] == _today()
    generated = datetime.fromisoformat(doc["generated_at"].replace("Z", "+00:00"))
    assert abs(datetime.now(timezone.utc) - generated) < timedelta(seconds=30)
    assert admin_db.one("SELECT count(*) FROM forecast_daily WHERE user_id = %s", user.user_id) == 0
    # Day 0 is the portfolio's day (app.domain.forecast) at the same snapshot.
    portfolio = client.get("/api/portfolio", headers=user.headers(SCOPES)).json()
    assert doc["days"][0]["revenue_usd"] == portfolio["daily_revenue_usd"]
    assert doc["days"][0]["cost_usd"] == portfolio["daily_cost_usd"]
    assert doc["days"][0]["profit_usd"] == portfolio["daily_profit_usd"]
    assert doc["assumptions"]["electricity_price_usd_kwh"] == 0.06
    assert doc["assumptions"]["difficulty_growth_pct_per_day"] == 0.1


def test_forecast_comes_from_forecast_daily_after_refresh(client, user, admin_db, cache):
    add_miners(admin_db, user, [(S21, "active"), (S21, "active")])
    refresh(user)
    cache.invalidate(forecast_key(user.user_id))  # the intel worker's after_commit
    doc, status = _get(client, user, "?days=7")
    assert status == "miss" and doc["stale"] is False

    rows = admin_db.all(
        """SELECT day, btc_mined, revenue_usd, cost_usd, profit_usd, btc_price_usd, difficulty, computed_at
             FROM forecast_daily WHERE user_id = %s AND day >= (now() AT TIME ZONE 'UTC')::date
            ORDER BY day LIMIT 7""", user.user_id)
    assert [d["day"] for d in doc["days"]] == [r[0].isoformat() for r in rows]
    for d, (_, btc, revenue, cost, profit, price, difficulty, _) in zip(doc["days"], rows, strict=True):
        assert (d["btc_mined"], d["revenue_usd"], d["cost_usd"], d["profit_usd"], d["btc_price_usd"]) == (
            round_btc(btc), round_usd(revenue), round_usd(cost), round_usd(profit), round_usd(price))
        assert d["difficulty"] == pytest.approx(difficulty)
    assert doc["generated_at"] == max(r[7] for r in rows).isoformat().replace("+00:00", "Z")
    assert doc["totals"]["revenue_usd"] == round_usd(math.fsum(r[2] for r in rows))
    assert doc["totals"]["profit_usd"] == round_usd(math.fsum(r[4] for r in rows))
    a = doc["assumptions"]
    assert a["horizon_days"] == 7
    assert a["btc_price_usd"] == doc["days"][0]["btc_price_usd"]
    assert a["difficulty_growth_pct_per_day"] == pytest.approx(0.1)  # recovered from the stored rows
    assert a["btc_price_growth_pct_per_day"] == pytest.approx(0.0)
    assert a["pool_fee_pct"] == 2.0 and a["block_reward_btc"] > 0


def test_days_beyond_the_stored_horizon_return_what_is_stored(client, user, admin_db, cache):
    add_miners(admin_db, user, [(S21, "active")])
    refresh(user)  # the intel worker writes 30 days
    doc, _ = _get(client, user, "?days=365")
    assert len(doc["days"]) == 30 and doc["assumptions"]["horizon_days"] == 30


def test_stale_while_revalidate_through_the_endpoint(client, user, admin_db, monkeypatch):
    with private_cache(monkeypatch, stale_grace=60) as cache:
        monkeypatch.setattr(read_models, "FORECAST_TTL_SECONDS", 0.5)
        add_miners(admin_db, user, [(S21, "active")])
        refresh(user)
        first, status = _get(client, user, "?days=3")
        assert status == "miss" and first["stale"] is False

        time.sleep(0.05)
        refresh(user)  # new rows, new computed_at; no invalidation: only the TTL can surface them
        time.sleep(0.6)
        started = time.perf_counter()
        stale, status = _get(client, user, "?days=3")
        assert time.perf_counter() - started < 0.5  # served at once, not after the reload
        assert status == "stale" and stale["stale"] is True
        assert stale["generated_at"] == first["generated_at"]

        assert cache.drain(5)  # the one background refresh
        fresh, status = _get(client, user, "?days=3")
        assert status == "fresh" and fresh["stale"] is False
        assert fresh["generated_at"] > first["generated_at"]
        assert cache.background_refreshes == 1


@pytest.mark.parametrize("query", ["?days=0", "?days=366", "?days=abc", "?horizon=5"])
def test_bad_days_is_a_400(client, user, query):
    r = client.get(f"/api/intelligence/forecast{query}", headers=user.headers(SCOPES))
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"


def test_forecast_needs_intel_read(client, user):
    r = client.get("/api/intelligence/forecast", headers=user.headers("portfolio:read"))
    assert r.status_code == 403 and r.json()["detail"] == "Missing scope: intel:read"
