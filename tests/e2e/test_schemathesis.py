"""Property-based conformance of the whole API (schemathesis 4) against the in-process ASGI app.

Every operation of contracts/openapi.yaml is exercised with generated requests (and the spec's examples),
authenticated as the seeded demo user with every scope, rate limiting off, response validation on, and
checked for: no 5xx, documented status codes, documented content types, response bodies matching their
schemas. Runs on the session's throwaway database (tests/integration/api/support.py). Bounded and
derandomized: MAX_EXAMPLES per operation, the same examples on every run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.adapters.rate_limit import RateLimiter
from app.adapters.tokens import encode_token
from app.entrypoints.app import create_app
from app.service_layer.users import UserDirectory
from tests.integration.api import support

MAX_EXAMPLES = 30
SCOPES = support.ALL_SCOPES
# The demo user the contract's examples name (seeded into the throwaway database), so examples succeed.
USER, TENANT = "demo-user-1", "demo-tenant"
STATUSES: dict[str, Counter[int]] = {}  # operationId -> status code counts, for the reachability check
# POST /analytics/login needs a validly signed JWT in its form, which a generator cannot produce (401/400 only).
NO_SUCCESS_EXPECTED = {"login"}

app = create_app(validate_responses=True, rate_limiter=RateLimiter(enabled=False), user_directory=UserDirectory())
schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)


@pytest.fixture(scope="module")
def api_db() -> Iterator[support.TestDatabase]:
    try:
        with support.test_database() as info, support.use_database(info):
            yield info
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def auth_headers(api_db: support.TestDatabase) -> dict[str, str]:
    return {"Authorization": "Bearer " + encode_token(USER, TENANT, SCOPES, ttl_seconds=3600)}


def test_every_operation_is_covered() -> None:
    spec_ops = {op["operationId"] for path in schema.raw_schema["paths"].values() for op in path.values()}
    tested = {result.ok().definition.raw["operationId"] for result in schema.get_all_operations()}
    assert tested == spec_ops


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_api_conforms_to_the_contract(case: schemathesis.Case, auth_headers: dict[str, str]) -> None:
    headers = dict(auth_headers) if case.operation.definition.raw.get("security") != [] else {}
    response = case.call_and_validate(
        headers=headers,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
    STATUSES.setdefault(case.operation.definition.raw["operationId"], Counter())[response.status_code] += 1


def test_generated_requests_reached_the_handlers() -> None:
    """Guard against a run that only ever produced 4xx (e.g. broken auth): every operation that ran must have
    answered at least one request with a success (2xx/3xx); the status mix is printed with -s."""
    for operation_id, counts in sorted(STATUSES.items()):
        print(f"{operation_id:22} {dict(sorted(counts.items()))}")
    missing = [
        op for op, counts in STATUSES.items()
        if op not in NO_SUCCESS_EXPECTED and not any(200 <= code < 400 for code in counts)
    ]
    assert not missing, {op: dict(STATUSES[op]) for op in missing}
