"""Helpers shared by the API tests (tests/integration/api) and the schemathesis run (tests/e2e).

A throwaway database: `hashinsight_apitest_<pid>` on the stack's PostgreSQL, migrated from scratch and
seeded with the `small` demo data (miner models, network snapshots, demo users), so these tests never touch
the dev database `hashinsight` and its CDC pipeline. `use_database(info)` points DATABASE_URL /
WORKER_DATABASE_URL / ADMIN_DATABASE_URL at it and resets the cached SQLAlchemy engines, and undoes both on
exit; the API tests wrap each test in it, so other suites of the same pytest session (pipeline, db) still
see the stack's own URLs. KEEP_TEST_DB=1 keeps the database after the run.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg2

from app.adapters import db as app_db
from tools import db, migrate, seed

REPO = Path(__file__).resolve().parents[3]
ALL_SCOPES = ("miners:read miners:write portfolio:read intel:read treasury:trade ops:read ops:write market:write "
              "billing:write")
_NAME_RE = re.compile(r"^hashinsight_apitest_([0-9]+)$")
_ENV_KEYS = ("DATABASE_URL", "WORKER_DATABASE_URL", "ADMIN_DATABASE_URL")


@dataclass(frozen=True)
class TestDatabase:
    __test__ = False  # not a test class
    name: str
    admin_url: str
    api_url: str
    worker_url: str


def _reset_engines() -> None:
    app_db.api_engine.cache_clear()
    app_db.worker_engine.cache_clear()


_shared: TestDatabase | None = None
_shared_users = 0


@contextmanager
def test_database(size: str = "small") -> Iterator[TestDatabase]:
    """The session's throwaway database, created on first use and dropped when the last user is done.

    Shared (reference-counted) so the API tests and the schemathesis run in one pytest session use one
    database instead of dropping each other's: both are named after the process id.
    """
    global _shared, _shared_users
    if _shared is None:
        _shared = _create(size)
    _shared_users += 1
    try:
        yield _shared
    finally:
        _shared_users -= 1
        if _shared_users == 0:
            info, _shared = _shared, None
            _drop(info)


def _create(size: str) -> TestDatabase:
    """Create, migrate, seed and point the environment at a throwaway database."""
    admin = db.admin_url()
    try:
        conn = db.connect(admin, autocommit=True)
    except psycopg2.OperationalError as exc:
        raise RuntimeError(f"PostgreSQL is unreachable at {db.redact(admin)}: {exc}".strip()) from exc
    name = f"hashinsight_apitest_{os.getpid()}"
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 'hashinsight_apitest_%'")
            for (stale,) in cur.fetchall():
                m = _NAME_RE.match(stale)
                if m and (stale == name or not db.owner_alive(int(m.group(1)))):
                    cur.execute(f'DROP DATABASE "{stale}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING UTF8')
    finally:
        conn.close()
    admin_url = db.with_database(admin, name)
    migrate.migrate(admin_url, out=lambda _line: None)
    seed.seed(admin_url, size)
    conn = db.connect(admin_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("ANALYZE")  # planner statistics, as autovacuum would have on a long-lived database
    finally:
        conn.close()
    info = TestDatabase(
        name=name,
        admin_url=admin_url,
        api_url=db.as_role_of(db.api_url(), admin_url),
        worker_url=db.as_role_of(db.worker_url(), admin_url),
    )
    return info


def env_for(info: TestDatabase) -> dict[str, str]:
    return {"DATABASE_URL": info.api_url, "WORKER_DATABASE_URL": info.worker_url, "ADMIN_DATABASE_URL": info.admin_url}


@contextmanager
def use_database(info: TestDatabase) -> Iterator[TestDatabase]:
    """Point the process (settings and the cached engines) at `info` for the duration of the block."""
    saved = {k: os.environ.get(k) for k in _ENV_KEYS}
    os.environ.update(env_for(info))
    _reset_engines()
    try:
        yield info
    finally:
        for engine_factory in (app_db.api_engine, app_db.worker_engine):
            if engine_factory.cache_info().currsize:
                engine_factory().dispose()  # the cached engine points at the throwaway database
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _reset_engines()


def _drop(info: TestDatabase) -> None:
    if os.environ.get("KEEP_TEST_DB") != "1":
        conn = db.connect(db.admin_url(), autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{info.name}" WITH (FORCE)')
        finally:
            conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


STARTUP_TIMEOUT_S = 90.0


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def uvicorn_server(log_dir: Path, *, workers: int = 2, env: dict[str, str] | None = None) -> Iterator[Server]:
    """`python -m app.entrypoints.serve` on a free port, exactly as infra/stack.sh starts it."""
    port = free_port()
    log_path = log_dir / f"serve-{port}.log"
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}  # pass env_for(db) to use a test database
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.entrypoints.serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers)],
            cwd=REPO, env=full_env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", proc, log_path)
    try:
        # Two workers import the app on a shared 2-core machine; under a parallel test run that took over 30 s.
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}:\n{server.log()}")
            try:
                if httpx.get(server.base_url + "/api/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not come up in {STARTUP_TIMEOUT_S:.0f} s:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()  # uvicorn's supervisor stops its workers on SIGTERM
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
