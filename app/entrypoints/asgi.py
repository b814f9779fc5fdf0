"""The ASGI application object: `uvicorn app.entrypoints.asgi:app` (serve.py does this with workers)."""

from __future__ import annotations

import os

from app.adapters.process import exit_with_parent
from app.entrypoints.app import create_app
from app.entrypoints.serve import configure_logging
from app.safe_defaults import require_safe_settings

require_safe_settings("web")  # also when a server imports this module directly (uvicorn app.entrypoints.asgi:app)

# A worker process of the supervised server (serve.py marks them) exits with its master, so a master killed
# and started again by the process supervisor finds its port free.
if os.environ.get("HASHINSIGHT_WEB_WORKER") == "1":
    exit_with_parent()
    configure_logging(os.environ.get("LOG_LEVEL", "info"))

app = create_app()
