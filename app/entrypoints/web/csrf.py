"""CSRF protection of the page's forms (POST /analytics/miners, POST /analytics/miners/{id}/status).

Only a request authenticated by the `hi_session` cookie needs it: a browser attaches the cookie by itself, so
another site could make it post a form (the cookie is SameSite=Lax, which already keeps it off cross-site
POSTs in current browsers; this is the second line). A bearer token is never attached by the browser, so a
request carrying one cannot be forged that way and needs no CSRF token.

The token is stateless: HMAC-SHA256 of the session cookie's value under a key derived from the JWT signing
keys (OWASP's "HMAC based token" pattern). It is bound to that one session, changes with every sign-in, and
needs no server-side storage. The page renders it into each form (`csrf_token`); a submitted form must carry
it, and an `Origin` header, when the browser sends one, must be this server's own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from app.config import get_settings
from app.entrypoints.http.problems import Forbidden

TYPE_CSRF = "urn:hashinsight:problem:csrf"
_CONTEXT = b"hashinsight-csrf-v1|"


def _key() -> bytes:
    settings = get_settings()
    return hashlib.sha256(_CONTEXT + (settings.jwt_keys or settings.jwt_secret).encode()).digest()


def token_for(session: str) -> str:
    digest = hmac.new(_key(), _CONTEXT + hashlib.sha256(session.encode()).digest(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def check(session: str, submitted: str | None, origin: str | None, own_origin: str) -> None:
    """403 unless `submitted` is the token of `session` and the request comes from this origin."""
    if origin and origin.rstrip("/") != own_origin.rstrip("/"):
        raise Forbidden(f"Form posted from {origin[:200]}, not from this site", type=TYPE_CSRF)
    if not submitted or not hmac.compare_digest(submitted, token_for(session)):
        raise Forbidden("The form's CSRF token is missing or does not belong to this session; reload the page "
                        "and submit again", type=TYPE_CSRF)
