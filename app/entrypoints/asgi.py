"""The ASGI application object: `uvicorn app.entrypoints.asgi:app` (serve.py does this with workers)."""

from __future__ import annotations

from app.entrypoints.app import create_app

app = create_app()
