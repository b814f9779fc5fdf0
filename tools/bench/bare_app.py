"""The read baseline: a bare Connexion 3 route behind the same bearer check as the API, nothing else.

`python -m uvicorn tools.bench.bare_app:app --workers 2` serves it exactly as web is served. GET /bare answers
a fixed JSON document after the same HS256 JWT verification and scope check (app.entrypoints.http.auth), so
`GET /api/portfolio` (cached) against it shows what the API adds on top of Connexion and the token.
"""

from __future__ import annotations

import connexion

from generated import routes

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "bare", "version": "1"},
    "paths": {
        "/bare": {
            "get": {
                "operationId": "tools.bench.bare_app.bare",
                "security": [{"bearerAuth": ["portfolio:read"]}],
                "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
                    "type": "object"}}}}},
            }
        }
    },
    "components": {"securitySchemes": {"bearerAuth": {
        "type": "http", "scheme": "bearer", "x-bearerInfoFunc": "app.entrypoints.http.auth.bearer_info"}}},
}


def bare() -> dict[str, object]:
    return {"ok": True, "miners_total": 0}


app = connexion.FlaskApp(__name__)
app.add_api(SPEC, security_map=routes.security_map())
