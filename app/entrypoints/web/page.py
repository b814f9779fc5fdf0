"""The analytics page (GET /analytics/main) from its inputs, rendered once per change of them.

The page is a function of the caller's portfolio, forecast and page context (app/service_layer/page_context.py),
their cache states, the caller's scopes and whether a session cookie signed it in, and today's date (the
forecast starts today). Three values must differ on every answer: the CSP nonce, the forms' Idempotency-Key and
the session's CSRF token. So a page is rendered with a marker in their place, kept (per process, the most
recent MAX_KEPT), and each answer is the kept text with the markers replaced: a view that changed nothing costs
no template, no chart and no database read.

The markers are random per process, so no user-supplied text can carry one.

`answer` is what the handler uses (rendering when nothing is kept); `kept_answer` is the event loop's
(app/entrypoints/fresh_reads.py): only a kept page, else None and the handler renders.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any

import app
from app.adapters.cache import FRESH
from app.adapters.tokens import Principal
from app.domain.forecast import DEFAULT_HORIZON_DAYS
from app.entrypoints.web import charts, csrf, fleet_forms, ops_panel
from app.entrypoints.web.render import environment, security_headers
from app.service_layer.read_models import View

TEMPLATE = "analytics_main.html"
NOSCRIPT_REFRESH_S = 5  # without JavaScript there is no stream: the page reloads itself instead
FORECAST_SCOPE = "intel:read"
MAX_KEPT = 256  # a page (~30 kB) and its entries' texts (~30 kB): about 15 MB per web process

_NONCE = "n" + secrets.token_hex(16)
_CSRF = "c" + secrets.token_hex(16)
_KEY = "k" + secrets.token_hex(16)

_kept: OrderedDict[tuple[Any, ...], str] = OrderedDict()
_lock = threading.Lock()  # handler threads and the event loop share the kept pages

Answer = tuple[bytes, dict[str, str]]


def answer(principal: Principal, portfolio: View, forecast: View | None, context: View,
           session: str | None) -> Answer:
    key = _key(principal, portfolio, forecast, context, session)
    marked = _kept_page(key)
    if marked is None:
        marked = _render(principal, portfolio, forecast, context, session)
        if key is not None:
            _keep(key, marked)
    return _finish(marked, session, portfolio.cache_status)


def kept_answer(principal: Principal, texts: tuple[str, ...], session: str | None) -> Answer | None:
    """The kept page for these fresh cache entries (their texts: the portfolio's, the page context's and, with
    intel:read, the forecast's), without decoding them; None when none is kept."""
    key = _key_of(principal, session, tuple((text, FRESH) for text in texts))
    marked = _kept_page(key)
    return None if marked is None else _finish(marked, session, FRESH)


def _key(principal: Principal, portfolio: View, forecast: View | None, context: View,
         session: str | None) -> tuple[Any, ...] | None:
    views = (portfolio, context) if forecast is None else (portfolio, context, forecast)
    if any(v.raw is None for v in views):  # a miss or a bypass: nothing identifies these values
        return None
    return _key_of(principal, session, tuple((v.raw, v.cache_status) for v in views))


def _key_of(principal: Principal, session: str | None, entries: tuple[tuple[Any, str], ...]) -> tuple[Any, ...]:
    # The entries by their text: equal texts are the same values, whose tenant the render checked.
    return (principal.tenant_id, principal.user_id, tuple(sorted(principal.scopes)), session is not None,
            datetime.now(timezone.utc).date(), entries)


def _kept_page(key: tuple[Any, ...] | None) -> str | None:
    if key is None:
        return None
    with _lock:
        marked = _kept.get(key)
        if marked is not None:
            _kept.move_to_end(key)
        return marked


def _keep(key: tuple[Any, ...], marked: str) -> None:
    with _lock:
        _kept[key] = marked
        while len(_kept) > MAX_KEPT:
            _kept.popitem(last=False)


def _render(principal: Principal, portfolio: View, forecast: View | None, context: View,
            session: str | None) -> str:
    p = portfolio.document
    f = forecast.document if forecast is not None else None
    panel = ops_panel.panel(principal, context.document)
    return environment().get_template(TEMPLATE).render(
        nonce=_NONCE,
        p=p,
        source=portfolio.source,
        cache_status=portfolio.cache_status,
        f=f,
        forecast_source=forecast.source if forecast else None,
        forecast_days=DEFAULT_HORIZON_DAYS,
        chart=charts.forecast_svg(f["days"]) if f else "",
        status_bar=charts.status_bar_svg(p["miners_by_status"]),
        statuses=charts.STATUSES,
        scopes=sorted(principal.scopes),
        # Changes whenever the consumer recalculates (as_of, last_event_id) or the forecast is rewritten; the
        # page's poller swaps its content only then.
        data_version=f"{p['as_of']}|{p['last_event_id']}|{f['generated_at'] if f else ''}|{panel['version']}",
        noscript_refresh_s=NOSCRIPT_REFRESH_S,
        stream_path="/analytics/stream",
        ops_panel=panel,
        forms=fleet_forms.form_context(principal, context.document, _CSRF if session else "", _KEY),
        version=app.__version__,
    )


def _finish(marked: str, session: str | None, cache_status: str) -> Answer:
    nonce = secrets.token_urlsafe(16)
    html = marked.replace(_NONCE, nonce).replace(_KEY, uuid.uuid4().hex)
    if session:
        html = html.replace(_CSRF, csrf.token_for(session))
    headers = {"Content-Type": "text/html; charset=utf-8", **security_headers(nonce), "X-Cache": cache_status}
    return html.encode(), headers
