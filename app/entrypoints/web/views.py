"""The read models as the HTTP layer uses them: a principal in, a View out, ForeignUser as a 403 problem."""

from __future__ import annotations

from datetime import date
from typing import Any

from app.adapters.tokens import Principal
from app.domain.forecast import DEFAULT_HORIZON_DAYS
from app.entrypoints.http.problems import TYPE_TENANT_MISMATCH, Forbidden
from app.service_layer import ops, read_models
from app.service_layer.page_context import page_context_view
from app.service_layer.read_models import ForeignUser, View


def _forbidden(exc: ForeignUser) -> Forbidden:
    # The admission middleware refuses such tokens first; this is the read side's own guard (see read_models).
    return Forbidden(f"User {exc.user_id} belongs to another tenant than {exc.tenant_id}",
                     type=TYPE_TENANT_MISMATCH)


def portfolio(principal: Principal) -> View:
    try:
        return read_models.portfolio_view(principal.tenant_id, principal.user_id)
    except ForeignUser as exc:
        raise _forbidden(exc) from None


def forecast(principal: Principal, days: int = DEFAULT_HORIZON_DAYS) -> View:
    try:
        return read_models.forecast_view(principal.tenant_id, principal.user_id, days)
    except ForeignUser as exc:
        raise _forbidden(exc) from None


def page_context(principal: Principal, portfolio: View) -> View:
    return page_context_view(principal, portfolio.document)


def ops_schedule(principal: Principal, day: date | None) -> dict[str, Any]:
    try:
        return ops.schedule_view(principal, day)
    except ForeignUser as exc:
        raise _forbidden(exc) from None


def cache_headers(view: View) -> dict[str, str]:
    # X-Cache lets the acceptance script and the tests see "served from cache"; private: per-user data.
    return {"Cache-Control": "private, no-store", "X-Cache": view.cache_status}
