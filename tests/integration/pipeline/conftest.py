"""The real CDC pipeline for tests: schema, topics and connector in place; a tenant and user per test.

Events are written the way the API writes them (a UnitOfWork on the API role's engine), Debezium carries them
to Kafka, and each test runs the shared consumer loop in-process with a handler of its own name, so its
consumer group and inbox marks never mix with a running worker's or another test's.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from app.adapters.db import api_engine, worker_engine
from tests.integration.pipeline.harness import Fleet, prepare_pipeline
from tools import db

# The stack's database URLs as the session started: other suites (the API tests) point the environment at a
# throwaway database for their session, but the connector captures the stack's `hashinsight` database.
_DB_KEYS = ("ADMIN_DATABASE_URL", "DATABASE_URL", "WORKER_DATABASE_URL")
_STACK_ENV = {key: os.environ.get(key) for key in _DB_KEYS}


def _point_env_at(values: dict[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    api_engine.cache_clear()
    worker_engine.cache_clear()


@pytest.fixture(scope="package", autouse=True)
def stack_database() -> Iterator[None]:
    """The pipeline tests talk to the database the connector reads; whatever was set before comes back after."""
    before = {key: os.environ.get(key) for key in _DB_KEYS}
    _point_env_at(_STACK_ENV)
    yield
    _point_env_at(before)


@pytest.fixture(scope="package")
def pipeline(stack_database) -> None:
    """Schema migrated, reference data seeded, topics from the contract, connector registered and running."""
    prepare_pipeline()


@pytest.fixture
def fleet(pipeline) -> Iterator[Fleet]:
    """A tenant and user of this test alone."""
    suffix = uuid.uuid4().hex[:10]
    f = Fleet(tenant_id=f"t-pipe-{suffix}", user_id=f"u-pipe-{suffix}")
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO users (id, tenant_id, display_name) VALUES (%s, %s, 'pipeline test')",
                    (f.user_id, f.tenant_id))
    yield f


