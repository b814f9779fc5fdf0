"""Reads answered on the event loop when the cache holds fresh entries: no thread, no Flask.

A cached `GET /api/portfolio` used to cross to a Flask thread only to read one Redis key and encode it. This
ASGI layer sits where the Flask app would be called (after Connexion's routing, security, admission and both
validations, so the contract, the scopes, the rate limit and the response schema apply exactly as before) and,
for the operations below, reads the entries with the asyncio Redis client (one MGET). A fresh entry of the
caller's tenant is answered here, byte for byte what the handler returns; anything else (stale, missing, another
tenant's, Redis silent, a query string the handler would have to read) goes on to the Flask handler, which serves
stale while it refreshes, loads, or refuses.

- GET /api/portfolio: user_portfolio:{uid}.
- GET /analytics/main: user_portfolio:{uid}, user_analytics:{uid} (the page context) and, with intel:read,
  forecast:{uid}, and a page the handler already rendered from exactly these (app/entrypoints/web/page.py).

Such an answer is counted in the request metrics and the access log like any other; it opens no trace span (the
Flask instrumentation's), since it reaches nothing a trace would follow: one Redis read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from app.adapters.cache import analytics_key, forecast_key, get_cache, portfolio_key
from app.adapters.tokens import Principal
from app.entrypoints.http.principal import principal_from_token_info, scope_token_info
from app.entrypoints.http.responses import JSON, JSONIFIER
from app.entrypoints.web import page, views
from app.entrypoints.web.login import COOKIE_NAME
from app.service_layer import read_models

_Answer = tuple[bytes, dict[str, str]]  # body, headers besides Content-Length


async def _portfolio(principal: Principal, scope: Scope) -> _Answer | None:
    cache = get_cache()
    view = read_models.fresh_portfolio_view(await cache.fresh(portfolio_key(principal.user_id)), principal.tenant_id,
                                            principal.user_id)
    if view is None:
        return None
    cache.count_fresh_hits(1)
    return JSONIFIER.dumps(view.document).encode(), {"Content-Type": JSON, **views.cache_headers(view)}


async def _page(principal: Principal, scope: Scope) -> _Answer | None:
    """The page, when it was rendered from exactly these fresh entries (app/entrypoints/web/page.py): they are
    recognised by their text, not decoded."""
    uid = principal.user_id
    keys = (portfolio_key(uid), analytics_key(uid), *([forecast_key(uid)] if principal.has_scopes([
        page.FORECAST_SCOPE]) else []))
    cache = get_cache()
    texts = await cache.fresh_texts(*keys)
    if len(texts) < len(keys):
        return None
    answer = page.kept_answer(principal, tuple(texts[k] for k in keys), _cookie(scope, COOKIE_NAME))
    if answer is not None:
        cache.count_fresh_hits(len(keys))
    return answer


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == b"cookie":
            found = cookie_parser(value.decode("latin-1")).get(name)
            if found is not None:
                return found
    return None


# operationId -> its event-loop answer (None: let the handler answer).
READERS: dict[str, Callable[[Principal, Scope], Awaitable[_Answer | None]]] = {
    "get_portfolio": _portfolio,
    "analytics_main": _page,
}


class FreshReadMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = await self._answer(scope) if scope["type"] == "http" and scope["method"] == "GET" else None
        if answer is None:
            await self.app(scope, receive, send)
            return
        body, headers = answer
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _answer(scope: Scope) -> _Answer | None:
        extensions = scope.get("extensions") or {}
        reader = READERS.get((extensions.get("connexion_routing") or {}).get("operation_id", ""))
        token_info = scope_token_info(scope)
        if reader is None or scope.get("query_string") or token_info is None:
            return None
        return await reader(principal_from_token_info(token_info), scope)
