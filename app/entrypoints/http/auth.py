"""Connexion 3 security functions for the spec's two schemes (contracts/openapi.yaml, components.securitySchemes).

    bearerAuth  (http bearer)     x-bearerInfoFunc: app.entrypoints.http.auth.bearer_info
    cookieAuth  (apiKey, cookie)  x-apikeyInfoFunc: app.entrypoints.http.auth.cookie_info

What Connexion 3.3 does with them (connexion/security.py):

- It calls the function with the credential (`token` / `api_key`) and, if the function accepts them, the
  keywords `required_scopes` and `request`. Returning a dict accepts the request; returning None is a 401
  "Provided token is not valid"; raising OAuthProblem is a 401 and OAuthScopeProblem a 403, both rendered as
  application/problem+json from the exception's `detail`.
- **Connexion 3.3 does not pass the operation's scopes to an `http` bearer function** (its
  BearerSecurityHandler drops them, so `required_scopes` is None; only oauth2 and apiKey get them). Build
  the app with `security_map=SECURITY_MAP` (below), which swaps in a bearer handler that passes them;
  without it scopes on bearerAuth operations would silently go unchecked.
- On success it sets `context["user"] = token_info["sub"]` and `context["token_info"] = token_info`
  (the dict returned here). A handler reads them either by declaring parameters named `user` and/or
  `token_info` (Connexion injects context keys that match argument names), or anywhere in the request via
  `from connexion.context import context; context["token_info"]`. `principal.principal_from_token_info()`
  turns the dict back into a Principal.

Returned token_info: {"sub": user_id, "uid": user_id, "tenant_id": ..., "scope": [sorted scopes], "jti": ...}.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from connexion.exceptions import OAuthProblem, OAuthScopeProblem
from connexion.security import BearerSecurityHandler
from flask import Response

from app.adapters.tokens import TokenError, decode_token
from app.entrypoints.http.principal import principal_from_token_info, token_info_of
from app.entrypoints.web import login as web_login
from generated import routes

log = logging.getLogger(__name__)

# RFC 6750 section 3: a 401 for a bearer resource says so, and why.
_WWW_AUTHENTICATE = 'Bearer realm="hashinsight", error="invalid_token"'


def _verify(token: str, required_scopes: Iterable[str] | None, what: str) -> dict[str, Any]:
    try:
        principal = decode_token(token)
    except TokenError as exc:
        log.info("rejected %s: %s (%s)", what, exc.reason, exc.code)
        problem = OAuthProblem(detail=f"Invalid {what}: {exc.reason}")
        problem.headers = {"WWW-Authenticate": _WWW_AUTHENTICATE}
        raise problem from None
    required = list(required_scopes or [])
    missing = principal.missing_scopes(required)
    if missing:
        forbidden = OAuthScopeProblem(required_scopes=required, token_scopes=sorted(principal.scopes))
        # Connexion's default detail dumps both lists; the contract's example says what is missing.
        forbidden.detail = "Missing scope: " + " ".join(missing)
        raise forbidden
    return token_info_of(principal)


def bearer_info(token: str, required_scopes: list[str] | None = None) -> dict[str, Any]:
    """x-bearerInfoFunc: `Authorization: Bearer <JWT>`."""
    return _verify(token, required_scopes, "token")


def cookie_info(api_key: str, required_scopes: list[str] | None = None) -> dict[str, Any]:
    """x-apikeyInfoFunc for the `hi_session` cookie: the same JWT, carried by the browser. Marked `via: cookie`,
    so the page's forms know to require their CSRF token (web/csrf.py)."""
    return {**_verify(api_key, required_scopes, "session cookie"), "via": "cookie"}


# The bearer handler that passes the operation's scopes lives with the generated route glue (generated/routes.py),
# which the app factory uses; this name is kept for callers that build a Connexion app by hand.
SECURITY_MAP: dict[str, type[BearerSecurityHandler]] = routes.security_map()

__all__ = ["SECURITY_MAP", "bearer_info", "cookie_info", "login", "login_form", "principal_from_token_info",
           "token_info_of"]


# --- dev browser login (operations login_form and login; development only, see app/entrypoints/web/login.py) --


def login_form() -> Response:
    """GET /analytics/login (public): the sign-in form, prefilled with a short-lived dev token when enabled."""
    return web_login.login_form_page()


def login(body: dict[str, Any]) -> Response:
    """POST /analytics/login (public): check the posted JWT like a bearer token, store it in the HttpOnly,
    SameSite=Lax cookie `hi_session` and 303 to /analytics/main; an invalid or expired token is a 401."""
    return web_login.sign_in(body["token"])
