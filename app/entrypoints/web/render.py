"""Jinja2 rendering of app/entrypoints/templates/ into HTML responses with the house security headers."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from flask import Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def usd(value: float | None, places: int = 2) -> str:
    if value is None:
        return "n/a"
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.{places}f}"


def btc(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.8f}"


def number(value: float | None, places: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{places}f}"


def when(value: str | None) -> str:
    """An ISO-8601 UTC timestamp as `2025-01-15 09:30:01 UTC` (seconds are enough on a page)."""
    if not value:
        return "n/a"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return parsed.strftime("%Y-%m-%d %H:%M:%S UTC")


def json_script(value: Any) -> Markup:
    """JSON safe inside <script type="application/json">: no `</script>` or `<!--` can end it early."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,  # a typo in a template is an error in the tests, not a blank on the page
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(usd=usd, btc=btc, number=number, when=when, json_script=json_script)
    return env


def _csp(nonce: str) -> str:
    # Same-origin only: the page can neither load nor send anything elsewhere, which also enforces "no CDN".
    return "; ".join([
        "default-src 'none'",
        f"script-src 'nonce-{nonce}'",
        f"style-src 'nonce-{nonce}'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ])


def security_headers(nonce: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": _csp(nonce),
        # Per-user data (and, on the login page, possibly a token): never stored by a browser or proxy cache.
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def html_response(template: str, status: int = 200, **context: Any) -> Response:
    nonce = secrets.token_urlsafe(16)
    body = environment().get_template(template).render(nonce=nonce, **context)
    response = Response(body, status=status, mimetype="text/html")
    response.headers.update(security_headers(nonce))
    return response
