"""GET /analytics/main (operationId analytics_main): the portfolio page, server-rendered HTML.

It renders the very View that GET /api/portfolio returns (same read model, same cache entry user_portfolio:{uid},
same rounding), so the page and the API cannot disagree; the document is also embedded as JSON
(#portfolio-json). The forecast chart comes from forecast:{uid} when the caller has intel:read.
Authentication: bearer header or the `hi_session` cookie (Connexion checks either against the contract); a
browser without valid credentials is sent to /analytics/login by app.entrypoints.web.login.browser_login_redirect.
"""

from __future__ import annotations

from typing import Any

from flask import Response

import app
from app.domain.forecast import DEFAULT_HORIZON_DAYS
from app.entrypoints.http import context
from app.entrypoints.http.problems import ApiProblem
from app.entrypoints.web import charts, fleet_forms, ops_panel, stream, views
from app.entrypoints.web.render import html_response

NOSCRIPT_REFRESH_S = 5  # without JavaScript there is no stream: the page reloads itself instead
FORECAST_SCOPE = "intel:read"


def analytics_main() -> Response:
    principal = context.current_principal()
    portfolio = views.portfolio(principal)
    # The forecast is intel:read data: a portfolio:read-only session sees the page without the chart.
    forecast = views.forecast(principal, DEFAULT_HORIZON_DAYS) if principal.has_scopes([FORECAST_SCOPE]) else None
    p, f = portfolio.document, forecast.document if forecast else None
    extra = ops_panel.panel(principal)
    response = html_response(
        "analytics_main.html",
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
        data_version=f"{p['as_of']}|{p['last_event_id']}|{f['generated_at'] if f else ''}|{extra['version']}",
        noscript_refresh_s=NOSCRIPT_REFRESH_S,
        stream_path="/analytics/stream",
        ops_panel=extra,
        forms=fleet_forms.form_context(principal),
        version=app.__version__,
    )
    response.headers["X-Cache"] = portfolio.cache_status
    return response


def analytics_stream() -> Response:
    """GET /analytics/stream is answered by web.stream.PageStreamMiddleware before Flask is reached (an open
    stream must not hold one of Flask's few threads); create_app() always installs it, so this runs only in
    an app built without it."""
    raise ApiProblem(503, "Live updates are not served by this app instance", type=stream.TYPE_UNAVAILABLE)


def add_miner_form(body: dict[str, Any]) -> Response:
    """POST /analytics/miners: the page's add-a-miner form; 303 back to the page."""
    return fleet_forms.add_miner(body)


def change_miner_status_form(id: str, body: dict[str, Any]) -> Response:  # noqa: A002 - the contract's name
    """POST /analytics/miners/{id}/status: the page's status form; 303 back to the page."""
    return fleet_forms.change_status(id, body)
