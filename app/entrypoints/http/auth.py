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
  `from connexion.context import context; context["token_info"]`. `principal_from_token_info()` turns the
  dict back into a Principal.

Returned token_info: {"sub": user_id, "uid": user_id, "tenant_id": ..., "scope": [sorted scopes], "jti": ...}.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from connexion.exceptions import OAuthProblem, OAuthScopeProblem
from connexion.security import NO_VALUE, BearerSecurityHandler

from app.adapters.tokens import Principal, TokenError, decode_token

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


def token_info_of(principal: Principal) -> dict[str, Any]:
    return {
        "sub": principal.user_id,
        "uid": principal.user_id,
        "tenant_id": principal.tenant_id,
        "scope": sorted(principal.scopes),
        "jti": principal.token_id,
    }


def principal_from_token_info(token_info: dict[str, Any]) -> Principal:
    return Principal(
        user_id=token_info["sub"],
        tenant_id=token_info["tenant_id"],
        scopes=frozenset(token_info.get("scope") or ()),
        token_id=token_info.get("jti"),
    )


def bearer_info(token: str, required_scopes: list[str] | None = None) -> dict[str, Any]:
    """x-bearerInfoFunc: `Authorization: Bearer <JWT>`."""
    return _verify(token, required_scopes, "token")


def cookie_info(api_key: str, required_scopes: list[str] | None = None) -> dict[str, Any]:
    """x-apikeyInfoFunc for the `hi_session` cookie: the same JWT, carried by the browser."""
    return _verify(api_key, required_scopes, "session cookie")


class ScopedBearerSecurityHandler(BearerSecurityHandler):
    """Connexion's bearer handler, but passing the operation's required scopes to the info function."""

    def get_fn(self, security_scheme: dict[str, Any], required_scopes: list[str]) -> Callable[..., Any] | None:
        info_func = self._resolve_func(security_scheme)
        if not info_func:
            log.warning("bearer security scheme without x-bearerInfoFunc")
            return None
        check = self.check_bearer_token(info_func)

        def wrapper(request: Any) -> Any:
            auth_type, token = self.get_auth_header_value(request)
            if auth_type != "bearer":
                return NO_VALUE  # not ours: let the next scheme (e.g. the cookie) try
            return check(request, token, required_scopes=list(required_scopes or []))

        return wrapper


# Pass to connexion.FlaskApp(..., security_map=SECURITY_MAP) (or app.add_api(..., security_map=...)).
SECURITY_MAP: dict[str, type[BearerSecurityHandler]] = {"bearer": ScopedBearerSecurityHandler}
