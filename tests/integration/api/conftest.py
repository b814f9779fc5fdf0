"""Fixtures for the HTTP API tests: the real app (create_app) on a throwaway, migrated, seeded database and
the stack's Redis. PostgreSQL or Redis down = every test here errors (tests/conftest.py checks the stack).

    def test_something(client, user, admin_db):
        r = client.post("/api/miners", json={...}, headers=user.headers())
        assert admin_db.one("SELECT count(*) FROM miners WHERE tenant_id = %s", user.tenant_id) == 1

- `api_db` (session): the throwaway database (support.test_database); an autouse fixture points
  DATABASE_URL etc. (and the cached engines) at it during each test of this directory only.
- `app` (session): create_app(validate_responses=True), rate limiting ON with a per-session Redis key
  prefix and its own UserDirectory; `client`: a starlette TestClient on it.
- `unlimited_app` / `unlimited_client`: the same with rate limiting off (many requests for one user).
- `user`: a fresh user in a fresh tenant per test (`TestUser.headers(scopes=..., **token kwargs)`);
  `make_user(tenant_id=None)` makes more (same tenant when given).
- `token`: the token factory (app.adapters.tokens.encode_token with the house claims).
- `admin_db`: superuser SQL on the test database (bypasses RLS) for checking what was written.
- `server` (module): `python -m app.entrypoints.serve` (uvicorn, 2 workers) on a free port, on api_db.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from starlette.testclient import TestClient

from app.adapters.rate_limit import RateLimiter
from app.adapters.tokens import encode_token
from app.entrypoints.app import create_app
from app.service_layer.users import UserDirectory
from tests.integration.api import support
from tests.integration.api.support import ALL_SCOPES, Server, TestDatabase


@pytest.fixture(scope="session")
def api_db() -> Iterator[TestDatabase]:
    try:
        with support.test_database() as info:
            yield info
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(autouse=True)
def _on_api_db(api_db: TestDatabase) -> Iterator[None]:
    # Per test, not per session: the suites that run after this directory (pipeline, db, ...) need the
    # stack's own DATABASE_URL back. An engine per test costs a few ms of connecting.
    with support.use_database(api_db):
        yield


@pytest.fixture(scope="session")
def redis_prefix() -> str:
    return f"test:api:{uuid.uuid4().hex[:10]}:"


@pytest.fixture(scope="session")
def app(api_db: TestDatabase, redis_prefix: str) -> Any:
    return create_app(
        validate_responses=True,
        rate_limiter=RateLimiter(enabled=True, key_prefix=redis_prefix),
        user_directory=UserDirectory(),
    )


@pytest.fixture(scope="session")
def unlimited_app(api_db: TestDatabase) -> Any:
    return create_app(
        validate_responses=True, rate_limiter=RateLimiter(enabled=False), user_directory=UserDirectory()
    )


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def unlimited_client(unlimited_app: Any) -> Iterator[TestClient]:
    with TestClient(unlimited_app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def token() -> Callable[..., str]:
    def make(sub: str, tenant_id: str, scopes: str = ALL_SCOPES, **kwargs: Any) -> str:
        return encode_token(sub, tenant_id, scopes, **kwargs)

    return make


@dataclass(frozen=True)
class TestUser:
    __test__ = False
    user_id: str
    tenant_id: str

    def token(self, scopes: str = ALL_SCOPES, **kwargs: Any) -> str:
        return encode_token(self.user_id, self.tenant_id, scopes, **kwargs)

    def headers(self, scopes: str = ALL_SCOPES, idempotency_key: str | None = None, **kwargs: Any) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.token(scopes, **kwargs)}"}
        if idempotency_key:
            h["Idempotency-Key"] = idempotency_key
        return h


@pytest.fixture
def make_user() -> Callable[..., TestUser]:
    def make(tenant_id: str | None = None) -> TestUser:
        suffix = uuid.uuid4().hex[:12]
        return TestUser(user_id=f"u-{suffix}", tenant_id=tenant_id or f"t-{suffix}")

    return make


@pytest.fixture
def user(make_user: Callable[..., TestUser]) -> TestUser:
    return make_user()


class AdminDb:
    """Superuser access to the test database (RLS does not apply), autocommit."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg2.connect(url, options="-c TimeZone=UTC")
        self.conn.autocommit = True

    def all(self, sql: str, *params: Any) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def one(self, sql: str, *params: Any) -> Any:
        rows = self.all(sql, *params)
        assert len(rows) == 1, rows
        return rows[0][0] if len(rows[0]) == 1 else rows[0]

    def execute(self, sql: str, *params: Any) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def admin_db(api_db: TestDatabase) -> Iterator[AdminDb]:
    adb = AdminDb(api_db.admin_url)
    yield adb
    adb.close()


@pytest.fixture(scope="module")
def server(api_db: TestDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log_dir: Path = tmp_path_factory.mktemp("serve")
    # With its access log, as infra/stack.sh runs it (tests/conftest.py turns it off for in-process apps).
    env = {**support.env_for(api_db), "HASHINSIGHT_ACCESS_LOG": "1"}
    with support.uvicorn_server(log_dir, workers=2, env=env) as srv:
        yield srv
