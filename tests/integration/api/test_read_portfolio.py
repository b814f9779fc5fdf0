"""GET /api/portfolio against the real PostgreSQL and Redis: the derived tables, the read-path computation for a
user never recalculated, the cache (hit, invalidation, stale-while-revalidate), scopes and the contract's shape.

Responses are validated against contracts/openapi.yaml by the app itself (the `app` fixture validates
responses), so every 200 here is also a schema-valid Portfolio.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import yaml

from app.adapters.cache import portfolio_key
from app.domain.mining import round_btc, round_usd
from app.entrypoints.web import views
from app.service_layer import read_models
from generated import routes
from tests.integration.api.read_support import M50S, S19_PRO, S21, add_miners, private_cache, recalc, record_calls

PORTFOLIO_SCOPE = "portfolio:read"
SPEC = yaml.safe_load(routes.SPEC_FILE.read_text())
MONEY = ("daily_revenue_usd", "daily_cost_usd", "daily_profit_usd")


@pytest.fixture
def cache(monkeypatch):
    with private_cache(monkeypatch) as c:
        yield c


def _get(client, user, scopes: str = PORTFOLIO_SCOPE):
    r = client.get("/api/portfolio", headers=user.headers(scopes))
    assert r.status_code == 200, r.text
    return r.json(), r.headers["X-Cache"]


def test_shape_is_the_contracts_portfolio(client, user, admin_db, cache):
    add_miners(admin_db, user, [(S21, "active")])
    doc, _ = _get(client, user)
    schema = SPEC["components"]["schemas"]["Portfolio"]
    assert set(doc) == set(schema["properties"])  # every property (network included), nothing else
    model_schema = SPEC["components"]["schemas"]["ModelBreakdown"]
    assert set(doc["by_model"][0]) == set(model_schema["properties"])
    assert doc["user_id"] == user.user_id and doc["tenant_id"] == user.tenant_id


def test_a_fresh_token_gets_a_portfolio_at_once_computed_on_read_without_writing(client, user, admin_db, cache):
    # No users row, no miners: JIT provisioning makes the user, the read path computes an empty portfolio.
    doc, status = _get(client, user)
    assert status == "miss"
    assert doc["miners_total"] == 0 and doc["by_model"] == []
    assert doc["miners_by_status"] == {"active": 0, "idle": 0, "maintenance": 0, "offline": 0, "retired": 0}
    assert doc["break_even_usd_kwh"] is None and doc["last_event_id"] is None
    assert doc["electricity_price_usd_kwh"] == 0.07  # the users column's default
    assert doc["network"]["block_reward_btc"] > 0  # the latest snapshot
    assert admin_db.one("SELECT count(*) FROM user_portfolio WHERE user_id = %s", user.user_id) == 0


def test_read_path_computation_equals_what_the_consumer_then_writes(client, user, admin_db, cache):
    add_miners(admin_db, user, [(S21, "active"), (S21, "active"), (S19_PRO, "idle"), (M50S, "retired")])
    computed, status = _get(client, user)
    assert status == "miss" and computed["last_event_id"] is None
    assert admin_db.one("SELECT count(*) FROM user_portfolio WHERE user_id = %s", user.user_id) == 0
    assert admin_db.one("SELECT count(*) FROM user_analytics WHERE user_id = %s", user.user_id) == 0

    recalc(user, last_event_id="evt-1")
    cache.invalidate(portfolio_key(user.user_id))  # what the portfolio worker does after its commit
    derived, status = _get(client, user)
    assert status == "miss" and derived["last_event_id"] == "evt-1"
    # Same fleet, same snapshot: identical figures whichever path produced them.
    volatile = {"as_of", "last_event_id"}
    assert {k: v for k, v in computed.items() if k not in volatile} == {
        k: v for k, v in derived.items() if k not in volatile}


def test_portfolio_equals_the_derived_tables(client, user, admin_db, cache):
    add_miners(admin_db, user, [(S21, "active"), (S19_PRO, "active"), (S19_PRO, "maintenance"), (M50S, "offline")])
    recalc(user, last_event_id="evt-42")
    doc, _ = _get(client, user)

    row = admin_db.one(
        """SELECT miners_total, miners_by_status, active_hashrate_ths, active_power_w, daily_btc, daily_revenue_usd,
                  daily_cost_usd, daily_profit_usd, break_even_usd_kwh, snapshot_ts, updated_at, last_event_id
             FROM user_portfolio WHERE tenant_id = %s AND user_id = %s""", user.tenant_id, user.user_id)
    (total, by_status, hashrate, power, btc, revenue, cost, profit, break_even, snapshot_ts, updated_at,
     last_event_id) = row
    assert doc["miners_total"] == total == 4
    assert doc["miners_by_status"] == {**{"active": 0, "idle": 0, "maintenance": 0, "offline": 0, "retired": 0},
                                       **by_status}
    assert doc["active_hashrate_ths"] == pytest.approx(hashrate)
    assert doc["active_power_w"] == round(power)
    assert doc["daily_btc"] == round_btc(btc)
    assert [doc[k] for k in MONEY] == [round_usd(revenue), round_usd(cost), round_usd(profit)]
    assert doc["break_even_usd_kwh"] == round_usd(break_even)
    assert doc["electricity_price_usd_kwh"] == 0.06
    assert doc["last_event_id"] == last_event_id == "evt-42"
    assert doc["as_of"] == updated_at.isoformat().replace("+00:00", "Z")
    assert doc["network"]["ts"] == snapshot_ts.isoformat().replace("+00:00", "Z")

    rows = admin_db.all(
        """SELECT a.model_id, mm.name, a.miners, a.active_miners, a.hashrate_ths, a.power_w, a.daily_btc,
                  a.daily_revenue_usd, a.daily_cost_usd, a.daily_profit_usd
             FROM user_analytics a JOIN miner_models mm ON mm.id = a.model_id
            WHERE a.user_id = %s ORDER BY a.model_id""", user.user_id)
    assert [
        (m["model_id"], m["model_name"], m["miners"], m["active_miners"], m["hashrate_ths"], m["power_w"],
         m["daily_btc"], m["daily_revenue_usd"], m["daily_cost_usd"], m["daily_profit_usd"])
        for m in doc["by_model"]
    ] == [
        (mid, name, n, active, pytest.approx(ths), round(w), round_btc(b), round_usd(rv), round_usd(c), round_usd(p))
        for mid, name, n, active, ths, w, b, rv, c, p in rows
    ]


def test_second_read_is_a_cache_hit_and_invalidation_makes_the_next_read_fresh(client, user, admin_db, cache):
    add_miners(admin_db, user, [(S21, "active")])
    recalc(user, last_event_id="evt-1")
    first, status = _get(client, user)
    assert status == "miss"
    second, status = _get(client, user)
    assert status == "fresh" and second == first

    add_miners(admin_db, user, [(S21, "active")])
    recalc(user, last_event_id="evt-2")
    cached, status = _get(client, user)
    assert status == "fresh" and cached["miners_total"] == 1  # the cache still holds the old value...

    assert cache.invalidate(portfolio_key(user.user_id))
    fresh, status = _get(client, user)  # ...until the consumer invalidates it
    assert status == "miss"
    assert fresh["miners_total"] == 2 and fresh["last_event_id"] == "evt-2"
    assert fresh["daily_revenue_usd"] == pytest.approx(2 * first["daily_revenue_usd"], abs=1e-3)


def test_a_fresh_entry_is_answered_on_the_event_loop_byte_for_byte_as_the_handler_answers(
        client, user, admin_db, cache, monkeypatch):
    handled = record_calls(monkeypatch, views, "portfolio")
    add_miners(admin_db, user, [(S21, "active"), (S19_PRO, "idle")])
    recalc(user, last_event_id="evt-1")
    by_handler = client.get("/api/portfolio", headers=user.headers(PORTFOLIO_SCOPE))
    assert by_handler.headers["X-Cache"] == "miss" and len(handled) == 1
    on_loop = client.get("/api/portfolio", headers=user.headers(PORTFOLIO_SCOPE))
    assert on_loop.status_code == 200 and on_loop.headers["X-Cache"] == "fresh"
    assert len(handled) == 1  # the handler did not run
    assert on_loop.content == by_handler.content
    for name in ("content-type", "cache-control", "content-length"):
        assert on_loop.headers[name] == by_handler.headers[name]
    assert "ratelimit-remaining" in on_loop.headers and "x-request-id" in on_loop.headers

    cache.invalidate(portfolio_key(user.user_id))  # no fresh entry: the handler answers again
    assert client.get("/api/portfolio", headers=user.headers(PORTFOLIO_SCOPE)).headers["X-Cache"] == "miss"
    assert len(handled) == 2


def test_the_event_loop_read_takes_only_a_fresh_entry_of_the_callers_tenant(client, user, admin_db, cache):
    async def fresh(tenant_id):
        found = await cache.fresh(portfolio_key(user.user_id))
        return read_models.fresh_portfolio_view(found, tenant_id, user.user_id)

    assert asyncio.run(fresh(user.tenant_id)) is None  # nothing cached yet
    add_miners(admin_db, user, [(S21, "active")])
    _get(client, user)
    view = asyncio.run(fresh(user.tenant_id))
    assert view is not None and view.cache_status == "fresh" and view.document["miners_total"] == 1
    assert asyncio.run(fresh("some-other-tenant")) is None  # the handler then refuses (ForeignUser)


def test_stale_value_is_served_at_once_then_refreshed_in_the_background(client, user, admin_db, monkeypatch):
    with private_cache(monkeypatch, stale_grace=60) as cache:
        monkeypatch.setattr(read_models, "PORTFOLIO_TTL_SECONDS", 0.5)
        add_miners(admin_db, user, [(S21, "active")])
        recalc(user, last_event_id="evt-1")
        assert _get(client, user)[1] == "miss"
        add_miners(admin_db, user, [(S19_PRO, "active")])
        recalc(user, last_event_id="evt-2")  # no invalidation: only the TTL can surface the change
        time.sleep(0.6)
        stale, status = _get(client, user)
        assert status == "stale" and stale["last_event_id"] == "evt-1"
        assert cache.drain(5)
        refreshed, status = _get(client, user)
        assert status == "fresh" and refreshed["last_event_id"] == "evt-2" and refreshed["miners_total"] == 2
        assert cache.background_refreshes == 1


def test_portfolio_needs_a_token_with_portfolio_read(client, user):
    assert client.get("/api/portfolio").status_code == 401
    r = client.get("/api/portfolio", headers=user.headers("miners:read"))
    assert r.status_code == 403 and r.json()["detail"] == "Missing scope: portfolio:read"


def test_the_session_cookie_is_not_accepted_on_the_api(client, user):
    # The contract: hi_session is for /analytics/* only; /api/* takes the bearer header.
    client.cookies.set("hi_session", user.token(PORTFOLIO_SCOPE))
    try:
        assert client.get("/api/portfolio").status_code == 401
    finally:
        client.cookies.clear()


def test_a_cached_portfolio_is_never_served_to_another_tenant(client, user, admin_db, cache):
    add_miners(admin_db, user, [(S21, "active")])
    _get(client, user)  # cached under user_portfolio:{uid}
    doc = read_models.portfolio_view(user.tenant_id, user.user_id).document
    assert doc["tenant_id"] == user.tenant_id
    with pytest.raises(read_models.ForeignUser):  # same uid, other tenant: refused, cache or not
        read_models.portfolio_view("some-other-tenant", user.user_id)
    cache.invalidate(portfolio_key(user.user_id))
    with pytest.raises(read_models.ForeignUser):  # and a loader under the wrong tenant caches nothing
        read_models.portfolio_view("some-other-tenant", user.user_id)
    assert read_models.portfolio_view(user.tenant_id, user.user_id).document["miners_total"] == 1
