"""GET /analytics/main and the dev login (GET/POST /analytics/login) against the real PostgreSQL and Redis:
the page shows exactly the API's portfolio, through the same cache entry; bearer and cookie auth; the login
flow; a new miner appearing; no external URLs; the contract's 303 for browsers without credentials."""

from __future__ import annotations

import html
import json
import re
import time

import jwt
import pytest

from app.adapters.cache import portfolio_key
from app.adapters.tokens import decode_token
from app.entrypoints.web import csrf, views
from app.entrypoints.web import login as web_login
from app.entrypoints.web.render import btc, usd, when
from tests.integration.api.read_support import M50S, S19_PRO, S21, add_miners, private_cache, recalc, record_calls

PAGE_SCOPES = "portfolio:read intel:read"
HTML_ACCEPT = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
def cache(monkeypatch):
    with private_cache(monkeypatch) as c:
        yield c


def _page(client, headers: dict[str, str] | None = None) -> tuple[str, str]:
    r = client.get("/analytics/main", headers={**HTML_ACCEPT, **(headers or {})})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    return r.text, r.headers["X-Cache"]


def _embedded(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="portfolio-json">(.*?)</script>', page, re.S)
    assert m, "the page embeds its portfolio document"
    return json.loads(m.group(1))


def _text_of(page: str, element_id: str) -> str:
    m = re.search(rf'id="{element_id}"[^>]*>(.*?)</', page, re.S)
    assert m, element_id
    return html.unescape(re.sub(r"<[^>]+>", "", m.group(1))).strip()


def test_page_shows_exactly_what_the_api_returns_from_the_same_cache_entry(client, user, admin_db, cache):
    add_miners(admin_db, user, [(S21, "active"), (S19_PRO, "active"), (M50S, "idle")])
    recalc(user, last_event_id="evt-page-1")
    api = client.get("/api/portfolio", headers=user.headers(PAGE_SCOPES))
    assert api.headers["X-Cache"] == "miss"
    page, status = _page(client, user.headers(PAGE_SCOPES))
    assert status == "fresh"  # the API's cache entry user_portfolio:{uid}, not a second load

    doc = api.json()
    assert _embedded(page) == doc
    assert _text_of(page, "miners-total") == str(doc["miners_total"])
    assert _text_of(page, "daily-revenue") == usd(doc["daily_revenue_usd"])
    assert _text_of(page, "daily-cost") == usd(doc["daily_cost_usd"])
    assert _text_of(page, "daily-profit") == usd(doc["daily_profit_usd"])
    assert _text_of(page, "daily-btc") == btc(doc["daily_btc"])
    assert _text_of(page, "break-even").startswith(usd(doc["break_even_usd_kwh"], 4))
    assert _text_of(page, "as-of") == when(doc["as_of"])
    assert _text_of(page, "last-event-id") == "evt-page-1"
    for m in doc["by_model"]:
        row = re.search(rf'<tr data-model-id="{m["model_id"]}">(.*?)</tr>', page, re.S).group(1)
        assert m["model_name"] in row and usd(m["daily_profit_usd"]) in html.unescape(row)
    assert "Network snapshot used" in page and when(doc["network"]["ts"]) in page


def test_page_of_a_user_never_recalculated_is_computed_on_read(client, user, admin_db, cache):
    add_miners(admin_db, user, [(S21, "active")])
    page, _ = _page(client, user.headers(PAGE_SCOPES))
    assert "computed on read" in page and _embedded(page)["miners_total"] == 1
    assert admin_db.one("SELECT count(*) FROM user_portfolio WHERE user_id = %s", user.user_id) == 0


def test_a_new_miner_appears_once_the_consumer_invalidates(client, user, admin_db, cache):
    add_miners(admin_db, user, [(S21, "active")])
    recalc(user, last_event_id="evt-1")
    before, _ = _page(client, user.headers(PAGE_SCOPES))
    version = re.search(r'<main id="live" data-version="([^"]+)"', before).group(1)

    add_miners(admin_db, user, [(S19_PRO, "active")])  # POST /api/miners, as far as the page can tell
    recalc(user, last_event_id="evt-2")  # the portfolio worker...
    cache.invalidate(portfolio_key(user.user_id))  # ...and its after_commit
    after, status = _page(client, user.headers(PAGE_SCOPES))
    assert status == "miss"
    assert _text_of(after, "miners-total") == "2" and _text_of(after, "last-event-id") == "evt-2"
    new_version = re.search(r'<main id="live" data-version="([^"]+)"', after).group(1)
    assert new_version != version  # what the page's script compares before swapping its content
    assert 'data-model-id="antminer-s19-pro"' in after
    # It listens to its stream instead of polling (the browser test drives it for real).
    assert 'new EventSource("/analytics/stream")' in after and "setInterval" not in after


def _nonce(response) -> str:
    return re.search(r"script-src 'nonce-([^']+)'", response.headers["content-security-policy"]).group(1)


def test_a_kept_page_is_answered_without_the_handler_with_new_nonce_and_form_key(
        client, user, admin_db, cache, monkeypatch):
    rendered = record_calls(monkeypatch, views, "portfolio")
    add_miners(admin_db, user, [(S21, "active")])
    recalc(user, last_event_id="evt-1")
    headers = {**HTML_ACCEPT, **user.headers(PAGE_SCOPES + " miners:write")}
    answers = [client.get("/analytics/main", headers=headers) for _ in range(4)]
    assert [r.headers["X-Cache"] for r in answers] == ["miss", "fresh", "fresh", "fresh"]
    assert len(rendered) == 2  # the miss, and the first fresh view (kept); the kept page answered the rest
    nonces = [_nonce(r) for r in answers]
    keys = [re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', r.text).group(1) for r in answers]
    assert len(set(nonces)) == len(set(keys)) == 4  # per answer, never per render
    for r, nonce in zip(answers[1:], nonces[1:], strict=True):
        assert f'<script nonce="{nonce}">' in r.text and f'<style nonce="{nonce}">' in r.text
    same = [r.text.replace(n, "N").replace(k, "K") for r, n, k in zip(answers, nonces, keys, strict=True)]
    assert same[1] == same[2] == same[3]
    for name in ("content-type", "cache-control", "x-content-type-options", "referrer-policy"):
        assert answers[3].headers[name] == answers[1].headers[name]

    add_miners(admin_db, user, [(S19_PRO, "idle")])  # a write, as far as the page can tell...
    recalc(user, last_event_id="evt-2")
    cache.invalidate(portfolio_key(user.user_id))  # ...and the consumer: only the portfolio's key
    after, _ = _page(client, user.headers(PAGE_SCOPES + " miners:write"))
    assert _text_of(after, "miners-total") == "2"
    assert "antminer-s19-pro" in after.split('id="fleet-actions"')[1]  # the forms list follows the portfolio


def test_a_kept_page_signed_in_by_cookie_carries_that_sessions_csrf_token(client, user, admin_db, cache):
    add_miners(admin_db, user, [(S21, "active")])
    token = user.token(PAGE_SCOPES + " miners:write", ttl_seconds=600)
    client.cookies.set("hi_session", token, path="/analytics")
    try:
        answers = [client.get("/analytics/main", headers=HTML_ACCEPT) for _ in range(3)]
    finally:
        client.cookies.clear()
    expected = csrf.token_for(token)
    for r in answers:
        assert r.status_code == 200
        assert set(re.findall(r'name="csrf_token" value="([^"]*)"', r.text)) == {expected}
    bearer = client.get("/analytics/main", headers={**HTML_ACCEPT, **user.headers(PAGE_SCOPES + " miners:write")})
    assert set(re.findall(r'name="csrf_token" value="([^"]*)"', bearer.text)) == {""}  # no session, no token


def test_forecast_chart_needs_intel_read(client, user, admin_db, cache):
    add_miners(admin_db, user, [(S21, "active")])
    page, _ = _page(client, user.headers(PAGE_SCOPES))
    assert '<svg class="chart"' in page
    assert page.count('<circle class="dot s-profit"') == 30  # one dot per forecast day
    page, _ = _page(client, user.headers("portfolio:read"))
    assert '<svg class="chart"' not in page and "needs the <code>intel:read</code> scope" in page


def test_page_loads_nothing_from_another_host(client, user, admin_db, cache):
    add_miners(admin_db, user, [(S21, "active")])
    r = client.get("/analytics/main", headers={**HTML_ACCEPT, **user.headers(PAGE_SCOPES)})
    page = r.text
    for attr in re.findall(r'(?:src|href|action)\s*=\s*["\']([^"\']*)', page, re.I):
        assert not re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", attr, re.I), attr
    assert "http://" not in page and "https://" not in page and "@import" not in page
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert r.headers["Cache-Control"] == "no-store"
    login = client.get("/analytics/login").text
    assert "http://" not in login and "https://" not in login


def test_page_needs_portfolio_read(client, user):
    r = client.get("/analytics/main", headers=user.headers("intel:read"))
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"


# --- login --------------------------------------------------------------------------------------------------


def test_login_flow_sets_the_session_cookie_and_the_page_renders_with_it(client, user, admin_db, cache):
    add_miners(admin_db, user, [(S21, "active"), (S21, "maintenance")])
    form = client.get("/analytics/login")
    assert form.status_code == 200 and form.headers["content-type"].startswith("text/html")
    assert 'action="/analytics/login"' in form.text and 'name="token"' in form.text

    token = user.token(PAGE_SCOPES, ttl_seconds=600)
    r = client.post("/analytics/login", data={"token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/analytics/main"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"hi_session={token};")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/analytics" in cookie
    max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))
    assert 590 <= max_age <= 600  # no longer than the token lives
    try:
        page, _ = _page(client)  # the client now carries the cookie, no Authorization header
        assert user.user_id in page and _embedded(page)["miners_total"] == 2
    finally:
        client.cookies.clear()


@pytest.mark.parametrize("token", ["x" * 20 + ".y.z", "not-a-jwt-at-all"])
def test_login_with_a_bad_token_is_a_problem(client, token):
    r = client.post("/analytics/login", data={"token": token}, follow_redirects=False)
    assert r.status_code in (400, 401) and r.headers["content-type"] == "application/problem+json"
    assert "set-cookie" not in r.headers


def test_login_with_an_expired_token_is_a_401(client, user):
    expired = user.token(PAGE_SCOPES, ttl_seconds=60, now=time.time() - 3600)
    r = client.post("/analytics/login", data={"token": expired}, follow_redirects=False)
    assert r.status_code == 401 and r.json()["detail"] == "Invalid token: token has expired"


def test_login_refuses_fields_beyond_the_contract(client, user):
    r = client.post("/analytics/login", data={"token": user.token(), "sub": "someone-else"}, follow_redirects=False)
    assert r.status_code == 400


def test_dev_login_form_is_prefilled_only_when_dev_minting_is_on(client, monkeypatch):
    monkeypatch.setenv("DEV_LOGIN", "1")
    page = client.get("/analytics/login").text
    token = html.unescape(re.search(r'<textarea[^>]*name="token"[^>]*>([^<]*)</textarea>', page).group(1))
    principal = decode_token(token)
    assert (principal.user_id, principal.tenant_id) == ("demo-user-1", "demo-tenant")
    assert principal.scopes == {"portfolio:read", "intel:read", "miners:read", "miners:write"}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == web_login.DEV_TOKEN_TTL_SECONDS
    assert "Development only" in page

    monkeypatch.setenv("DEV_LOGIN", "0")
    page = client.get("/analytics/login").text
    assert re.search(r'<textarea[^>]*name="token"[^>]*></textarea>', page)


def test_dev_minting_defaults_to_off_once_real_keys_are_configured(monkeypatch):
    monkeypatch.delenv("DEV_LOGIN", raising=False)
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.delenv("JWT_KEYS", raising=False)
    assert web_login.dev_minting_enabled()
    monkeypatch.setenv("JWT_SECRET", "a-real-secret-from-the-secret-store-0123456789")
    assert not web_login.dev_minting_enabled()
    monkeypatch.setenv("DEV_LOGIN", "1")
    assert web_login.dev_minting_enabled()


def test_the_login_page_never_mints_outside_development(client, monkeypatch):
    """With the public default secret, a minting login page would hand out tokens to anyone."""
    monkeypatch.setenv("DEV_LOGIN", "1")
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.setenv("HASHINSIGHT_ENV", "production")
    assert not web_login.dev_minting_enabled()
    page = client.get("/analytics/login")
    assert page.status_code == 200 and "eyJ" not in page.text  # no JWT in the form


# --- browsers without credentials (the contract's 303) ------------------------------------------------------


def test_browser_without_credentials_is_sent_to_the_login_form(client, user):
    c = client
    try:
        r = c.get("/analytics/main", headers=HTML_ACCEPT, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/analytics/login"
        # An expired session goes the same way, and the dead cookie is dropped.
        c.cookies.set("hi_session", user.token(PAGE_SCOPES, ttl_seconds=60, now=time.time() - 3600))
        r = c.get("/analytics/main", headers=HTML_ACCEPT, follow_redirects=False)
        assert r.status_code == 303 and "hi_session=;" in r.headers["set-cookie"]
        c.cookies.clear()
        # Not a browser: the usual 401 problem.
        r = c.get("/analytics/main", headers={"Accept": "application/json"}, follow_redirects=False)
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        r = c.get("/api/portfolio", headers=HTML_ACCEPT, follow_redirects=False)
        assert r.status_code == 401  # only the page redirects
    finally:
        c.cookies.clear()


def test_chart_draws_losses_below_a_zero_line():
    from app.entrypoints.web.charts import forecast_svg, nice_step

    days = [{"day": f"2025-01-{i + 1:02d}", "revenue_usd": 10.0 - i, "cost_usd": 12.0, "profit_usd": -2.2 - i}
            for i in range(30)]
    svg = str(forecast_svg(days))
    assert svg.count('class="axis-zero"') == 1 and "-$" in svg and svg.count("<polyline") == 3
    assert "http" not in svg  # inline SVG needs no namespace URL inside HTML
    assert [nice_step(s) for s in (100, 7, 0.3)] == [20, 2, 0.1]
