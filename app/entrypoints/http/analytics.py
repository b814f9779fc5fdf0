"""GET /analytics/main (operationId analytics_main): the portfolio page, server-rendered HTML.

It renders the very View that GET /api/portfolio returns (same read model, same cache entry user_portfolio:{uid},
same rounding), so the page and the API cannot disagree; the document is also embedded as JSON
(#portfolio-json). The forecast chart comes from forecast:{uid} when the caller has intel:read.
Authentication: bearer header or the `hi_session` cookie (Connexion checks either against the contract); a
browser without valid credentials is sent to /analytics/login by app.entrypoints.web.login.browser_login_redirect.
The plan, maintenance and form data come from the page context (app/service_layer/page_context.py); the page is
rendered once per change of its inputs (app/entrypoints/web/page.py), and a kept page whose inputs are all fresh
in the cache is answered on the event loop (app/entrypoints/fresh_reads.py).
"""

from __future__ import annotations

from typing import Any

from flask import Response, request

from app.domain.forecast import DEFAULT_HORIZON_DAYS
from app.entrypoints.http import context
from app.entrypoints.http.problems import ApiProblem
from app.entrypoints.web import fleet_forms, page, stream, views
from app.entrypoints.web.login import COOKIE_NAME


def analytics_main() -> Response:
    principal = context.current_principal()
    portfolio = views.portfolio(principal)
    # The forecast is intel:read data: a portfolio:read-only session sees the page without the chart.
    forecast = views.forecast(principal, DEFAULT_HORIZON_DAYS) if principal.has_scopes([page.FORECAST_SCOPE]) \
        else None
    body, headers = page.answer(principal, portfolio, forecast, views.page_context(principal, portfolio),
                                request.cookies.get(COOKIE_NAME))
    return Response(body, status=200, headers=headers)


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
