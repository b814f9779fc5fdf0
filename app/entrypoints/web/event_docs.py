"""The AsyncAPI HTML docs (generated/asyncapi-html/, `make generate`) at /api/events/, beside Swagger UI.

Static files outside the contract, like Swagger UI itself: Flask routes on the Connexion app's Flask app.
They load nothing from another host; the Content-Security-Policy says so (the generated page needs its own
scripts and inline style attributes, nothing else).
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, redirect, send_from_directory

DOCS_DIR = Path(__file__).resolve().parents[3] / "generated" / "asyncapi-html"
PREFIX = "/api/events"
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "font-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'")


def _file(name: str) -> Response:
    response = send_from_directory(DOCS_DIR, name, max_age=300)  # refuses paths outside DOCS_DIR (404)
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def install(flask_app: Flask) -> None:
    flask_app.add_url_rule(PREFIX, "event_docs_bare", lambda: redirect(PREFIX + "/", code=308))
    flask_app.add_url_rule(PREFIX + "/", "event_docs_index", lambda: _file("index.html"))
    flask_app.add_url_rule(PREFIX + "/<path:name>", "event_docs_file", _file)
