"""Browser sign-in for /analytics/*: the dev login form, the `hi_session` cookie, and the 303 to the form.

DEVELOPMENT ONLY (docs/analytics-page.md). The contract's POST /analytics/login takes a JWT (`token`), checks it
exactly like a bearer token and stores it in the HttpOnly, SameSite=Lax cookie `hi_session`. To make the page
usable without a terminal, the form (GET /analytics/login) comes prefilled with a freshly minted, short-lived
token for the demo identity, but only while dev minting is enabled, which is never outside
HASHINSIGHT_ENV=development; in development:

- DEV_LOGIN=1 enables it, DEV_LOGIN=0 disables it;
- unset, it is enabled only while the JWT keys are the built-in dev default (neither JWT_SECRET nor JWT_KEYS
  is set). A deployment that configures real signing keys therefore never mints tokens on a public page,
  even if it forgets DEV_LOGIN.

Production replaces this with an identity provider (OIDC authorization-code flow): the IdP's callback sets
the same cookie, or a proxy injects `Authorization: Bearer`; the page accepts either.
"""

from __future__ import annotations

import os
import time
from typing import Any

import jwt
from connexion.exceptions import OAuthProblem
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from flask import Response, redirect, request

from app.adapters.tokens import TokenError, decode_token, encode_token
from app.config import get_settings
from app.entrypoints.http.problems import handle_problem
from app.entrypoints.web.render import html_response

COOKIE_NAME = "hi_session"
COOKIE_PATH = "/analytics"  # the contract accepts the cookie on /analytics/* only: send it nowhere else
LOGIN_PATH = "/analytics/login"
MAIN_PATH = "/analytics/main"
DEV_TOKEN_TTL_SECONDS = 1800  # short-lived: a leaked dev cookie is useless within half an hour
# miners:read/write: the page's forms add miners and change their status, so the whole loop can be watched.
DEV_IDENTITY = {"sub": "demo-user-1", "tenant_id": "demo-tenant",
                "scopes": "portfolio:read intel:read miners:read miners:write"}
_WWW_AUTHENTICATE = 'Bearer realm="hashinsight", error="invalid_token"'


def dev_minting_enabled() -> bool:
    if not get_settings().development:
        return False  # outside HASHINSIGHT_ENV=development the page never mints a token, whatever DEV_LOGIN says
    flag = os.environ.get("DEV_LOGIN", "").strip().lower()
    if flag:
        return flag not in ("0", "false", "no", "off")
    return not os.environ.get("JWT_SECRET") and not os.environ.get("JWT_KEYS")


def login_form_page() -> Response:
    dev_token = None
    if dev_minting_enabled():
        dev_token = encode_token(DEV_IDENTITY["sub"], DEV_IDENTITY["tenant_id"], DEV_IDENTITY["scopes"],
                                 ttl_seconds=DEV_TOKEN_TTL_SECONDS)
    return html_response("login.html", dev_token=dev_token, identity=DEV_IDENTITY,
                         ttl_minutes=DEV_TOKEN_TTL_SECONDS // 60, action=LOGIN_PATH)


def _is_https() -> bool:
    # uvicorn's proxy-headers support rewrites the scheme from X-Forwarded-Proto for trusted proxies only.
    return request.scheme == "https"


def sign_in(token: str) -> Response:
    """Check the token like a bearer token, set the session cookie for its remaining life, 303 to the page."""
    token = token.strip()
    try:
        decode_token(token)
    except TokenError as exc:
        problem = OAuthProblem(detail=f"Invalid token: {exc.reason}")
        problem.headers = {"WWW-Authenticate": _WWW_AUTHENTICATE}
        raise problem from None
    response = redirect(MAIN_PATH, code=303)
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=max(1, _seconds_left(token)),  # the cookie never outlives the token it carries
        path=COOKIE_PATH,
        httponly=True,  # page scripts cannot read the token
        samesite="Lax",  # not sent on cross-site subresource requests or POSTs
        secure=_is_https(),
    )
    response.headers["Cache-Control"] = "no-store"
    # A bodiless redirect: the operation declares no media type for its 303, so send none (Flask would say
    # text/html, which response validation rejects).
    response.set_data(b"")
    del response.headers["Content-Type"]
    return response


def _seconds_left(token: str) -> int:
    # decode_token has verified the signature and exp already; this only reads exp back.
    exp = jwt.decode(token, options={"verify_signature": False}).get("exp", 0)
    return int(exp - time.time())


def _wants_html(req: ConnexionRequest) -> bool:
    accept = req.headers.get("accept", "")
    return "text/html" in accept


def browser_login_redirect(req: ConnexionRequest, exc: OAuthProblem) -> ConnexionResponse:
    """Error handler for OAuthProblem (register with app.add_error_handler(OAuthProblem, ...)).

    The contract: a browser (Accept text/html) without valid credentials on GET /analytics/main is sent to the
    login form with a 303; anyone else gets the usual 401 problem. A 403 (valid token, missing scope) is not
    an OAuthProblem, so it stays a problem for browsers too.
    """
    if req.method == "GET" and req.url.path == MAIN_PATH and _wants_html(req):
        headers: dict[str, Any] = {"Location": LOGIN_PATH, "Cache-Control": "no-store"}
        if req.cookies.get(COOKIE_NAME):
            # An expired or invalid session: drop it, so the form starts clean.
            headers["Set-Cookie"] = f"{COOKIE_NAME}=; Max-Age=0; Path={COOKIE_PATH}; HttpOnly; SameSite=Lax"
        return ConnexionResponse(status_code=303, headers=headers, body=b"", mimetype="text/plain")
    return handle_problem(req, exc)
