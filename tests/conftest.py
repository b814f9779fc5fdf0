"""Shared by every test: integration and end-to-end tests need the real stack and fail loudly without it."""

from __future__ import annotations

import os
import socket

import pytest

# Tests are a development context (make test sets it too): the app they build in-process and the servers and
# workers they start accept the development JWT secret. The tests of the refusal set production themselves.
os.environ.setdefault("HASHINSIGHT_ENV", "development")
# The apps built in-process would write their access lines to the terminal as pytest exits; the access log has
# tests of its own (tests/unit/entrypoints/test_access_log.py, and on the running web).
os.environ.setdefault("HASHINSIGHT_ACCESS_LOG", "0")

from app.config import get_settings  # noqa: E402 - after the environment default above

_STACK_DIRS = ("/tests/integration/", "/tests/e2e/")


def _unreachable() -> list[str]:
    s = get_settings()
    ports = {
        "postgres": s.pg_port,
        "redis": s.redis_port,
        "kafka": s.kafka_port,
        "registry": s.registry_port,
        "connect": s.connect_port,
    }
    down = []
    for name, port in ports.items():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            down.append(f"{name} (127.0.0.1:{port})")
    return down


@pytest.fixture(scope="session")
def _stack_checked() -> None:
    down = _unreachable()
    if down:
        pytest.fail(
            "the native stack is not running: " + ", ".join(down) + ". Start it with `make stack-up` "
            "(`make test` does this itself).",
            pytrace=False,
        )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--reverse", action="store_true",
                     help="run the collected tests in reverse order (CI does, to prove there is no order dependence)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--reverse"):
        items.reverse()
    for item in items:
        if any(d in str(item.path) for d in _STACK_DIRS):
            item.fixturenames.insert(0, "_stack_checked")
