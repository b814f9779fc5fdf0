"""GET /api/intelligence/forecast (operationId get_forecast): forecast_daily through forecast:{uid}, SWR."""

from __future__ import annotations

from app.domain.forecast import DEFAULT_HORIZON_DAYS
from app.entrypoints.http import context
from app.entrypoints.http.responses import HandlerResult, json_body
from app.entrypoints.web import views


def get_forecast(days: int = DEFAULT_HORIZON_DAYS) -> HandlerResult:
    # Connexion has already checked 1 <= days <= 365 against the contract.
    view = views.forecast(context.current_principal(), days)
    return json_body(view.document, 200, views.cache_headers(view))
