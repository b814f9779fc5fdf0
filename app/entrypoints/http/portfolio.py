"""GET /api/portfolio (operationId get_portfolio): the caller's portfolio, exactly as /analytics/main shows it."""

from __future__ import annotations

from app.entrypoints.http import context
from app.entrypoints.http.responses import HandlerResult, json_body
from app.entrypoints.web import views


def get_portfolio() -> HandlerResult:
    view = views.portfolio(context.current_principal())
    return json_body(view.document, 200, views.cache_headers(view))
