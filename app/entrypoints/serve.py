"""Production server: `python -m app.entrypoints.serve --host 127.0.0.1 --port 8000 [--workers N]`.

uvicorn with N worker processes (default 2, or $WEB_WORKERS) serving app.entrypoints.asgi:app. Each worker
is its own process with its own DB pool, Redis pool and in-process caches (provisioned users, plans), so
the machine's cores are used despite the GIL; inside a worker, Connexion runs the Flask handlers in a
thread pool. Two workers match the 2-core dev machine; in production use about one per core.

Metrics: every worker process writes its samples to PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess
mode), so GET /metrics, whichever worker answers it, reports all of them. The directory is emptied at start
(or created, as a private temporary directory, when the variable is unset) and set before the workers start.

The server does not depend on any particular endpoint: infra/stack.sh polls GET /api/health, which
answers (501 until its handler exists, then 200) as soon as the workers have imported the app.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import uvicorn

from app.entrypoints import access_log
from app.safe_defaults import require_safe_settings

DEFAULT_WORKERS = 2


def configure_logging(level: str) -> None:
    """The server's log format, in the master and (app/entrypoints/asgi.py) in each worker process: the workers
    are spawned, not forked, so they would otherwise log only warnings, bare."""
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the HashInsight API (uvicorn, several workers).")
    parser.add_argument("--host", default=os.environ.get("WEB_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("WEB_PORT", "8000")))
    parser.add_argument(
        "--workers", type=int, default=int(os.environ.get("WEB_WORKERS", str(DEFAULT_WORKERS))),
        help=f"worker processes (default {DEFAULT_WORKERS}, or $WEB_WORKERS)",
    )
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "info"))
    parser.add_argument("--no-access-log", action="store_true",
                        help="do not log every request (app/entrypoints/access_log.py)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    return args


def prepare_metrics_dir() -> tuple[Path, bool]:
    """An empty multiprocess directory for this server's workers; True when it is ours to remove at exit."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # samples of an earlier run would be merged in otherwise
            stale.unlink()
        return path, False
    path = Path(tempfile.mkdtemp(prefix="hashinsight-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path, True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_safe_settings("web")  # before any worker process is spawned
    # Read by app.entrypoints.asgi in each worker process uvicorn spawns (they inherit the environment).
    os.environ["HASHINSIGHT_WEB_WORKER"] = "1"
    if args.no_access_log:
        os.environ[access_log.ENV] = "0"
    metrics_dir, owned = prepare_metrics_dir()
    configure_logging(args.log_level)
    uvicorn.run(
        "app.entrypoints.asgi:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level.lower(),
        access_log=False,  # the app writes its own (app/entrypoints/access_log.py)
        # Behind a local proxy, take the client address from X-Forwarded-For (only 127.0.0.1 is trusted).
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    if owned:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
