"""Property-based conformance of the whole API (schemathesis 4) against the in-process ASGI app.

Every operation of contracts/openapi.yaml is exercised with generated requests (and the spec's examples),
authenticated as the seeded demo user with every scope, rate limiting off, response validation on, and
checked for: no 5xx, documented status codes, documented content types, response bodies matching their
schemas. Runs on the session's throwaway database (tests/integration/api/support.py). Bounded and
derandomized: MAX_EXAMPLES per operation, the same examples on every run.

Three tests, each standing alone (none reads another's results, so the module passes alone, in any order):
- every operation with generated requests and the spec's examples (schemathesis' examples, coverage and fuzzing
  phases);
- the stateful phase: sequences of calls that follow the links schemathesis infers (a created miner's id into
  GET /api/miners/{id} and PATCH .../status), STATEFUL_EXAMPLES sequences of up to STATEFUL_STEPS calls;
- reachability: every operation answers at least one of its own example or generated requests with a success.

`make test` runs the short form (30 examples per operation, 10 sequences); `make fuzz` the long one (FUZZ=1:
FUZZ_MAX_EXAMPLES per operation, default 300, and FUZZ_STATEFUL_EXAMPLES sequences, default 200) and prints the
figures: operations, examples, stateful steps and server errors.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
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

LONG = os.environ.get("FUZZ") == "1"
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "300")) if LONG else 30
STATEFUL_EXAMPLES = int(os.environ.get("FUZZ_STATEFUL_EXAMPLES", "200")) if LONG else 10
STATEFUL_STEPS = 10
REACH_EXAMPLES = 10
SCOPES = support.ALL_SCOPES
CHECKS = None  # set below, after the imports of the checks
# The demo user the contract's examples name (seeded into the throwaway database), so examples succeed.
USER, TENANT = "demo-user-1", "demo-tenant"
# POST /analytics/login needs a validly signed JWT in its form, which a generator cannot produce (401/400 only).
NO_SUCCESS_EXPECTED = {"login"}

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
HYPOTHESIS = {
    "derandomize": True,
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
}

# GET /analytics/stream never ends, and the in-process ASGI transport waits for a response's end: it is tested
# over real HTTP instead (tests/integration/api/test_page_stream.py and the contract-example test).
STREAMS = {"analytics_stream"}

app = create_app(validate_responses=True, rate_limiter=RateLimiter(enabled=False), user_directory=UserDirectory())
schema = schemathesis.openapi.from_asgi("/api/openapi.json", app).exclude(operation_id=list(STREAMS))


@dataclass
class Figures:
    """What the run did, printed at the end of the module (the `make fuzz` report); no test reads it."""

    operations: set[str] = field(default_factory=set)
    examples: int = 0
    stateful_steps: int = 0
    server_errors: int = 0


FIGURES = Figures()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    print(f"\nfuzz figures: {len(FIGURES.operations)} operations, {FIGURES.examples} examples, "
          f"{FIGURES.stateful_steps} stateful steps, {FIGURES.server_errors} server errors")


def _count(case: schemathesis.Case, status: int, *, stateful: bool = False) -> None:
    FIGURES.operations.add(case.operation.definition.raw["operationId"])
    if stateful:
        FIGURES.stateful_steps += 1
    else:
        FIGURES.examples += 1
    if status >= 500:
        FIGURES.server_errors += 1


def _headers_for(case: schemathesis.Case, auth_headers: dict[str, str]) -> dict[str, str]:
    return dict(auth_headers) if case.operation.definition.raw.get("security") != [] else {}


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
    assert tested == spec_ops - STREAMS


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, **HYPOTHESIS)
def test_api_conforms_to_the_contract(case: schemathesis.Case, auth_headers: dict[str, str]) -> None:
    response = case.call(headers=_headers_for(case, auth_headers))
    _count(case, response.status_code)
    case.validate_response(response, checks=CHECKS)


def test_stateful_sequences_conform_to_the_contract(auth_headers: dict[str, str]) -> None:
    workflow = schema.as_state_machine()

    class Workflow(workflow):  # type: ignore[misc,valid-type]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict:
            return {"headers": _headers_for(case, auth_headers)}

        def validate_response(self, response, case, additional_checks=(), **kwargs) -> None:  # noqa: ANN001
            _count(case, response.status_code, stateful=True)
            case.validate_response(response, checks=CHECKS)

    # Generation only: the sequences read what earlier ones wrote (the miners a list returns), so replaying or
    # shrinking one against the changed database would draw differently (hypothesis' FlakyStrategyDefinition).
    Workflow.run(settings=settings(max_examples=STATEFUL_EXAMPLES, stateful_step_count=STATEFUL_STEPS,
                                   phases=[Phase.generate], **HYPOTHESIS))


def _drawing(strategy, counts: Counter[int], auth_headers: dict[str, str]):  # noqa: ANN001, ANN202
    @given(case=strategy)
    @settings(max_examples=REACH_EXAMPLES, **HYPOTHESIS)
    def call(case: schemathesis.Case) -> None:
        status = case.call(headers=_headers_for(case, auth_headers)).status_code
        _count(case, status)
        counts[status] += 1

    return call


def test_generated_requests_reached_the_handlers(auth_headers: dict[str, str]) -> None:
    """Guard against a run that only ever produced 4xx (e.g. broken auth): every operation answers at least one of
    its example or generated requests from its handler (2xx/3xx, or 409). Draws its own requests; the mix is printed."""
    statuses: dict[str, Counter[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        counts = statuses.setdefault(operation.definition.raw["operationId"], Counter())
        for strategy in [*operation.get_strategies_from_examples(), operation.as_strategy()]:
            _drawing(strategy, counts, auth_headers)()
    for operation_id, counts in sorted(statuses.items()):
        print(f"{operation_id:22} {dict(sorted(counts.items()))}")
    assert set(statuses) == {op["operationId"] for p in schema.raw_schema["paths"].values() for op in p.values()
                             } - STREAMS
    # Reached = a success, or a 409, which only a handler answers (a duplicate serial, a same-status change, a key
    # reused): the examples' fixed serial number and status change conflict with what the other tests wrote first.
    missing = [
        op for op, counts in statuses.items()
        if op not in NO_SUCCESS_EXPECTED and not any(200 <= code < 400 or code == 409 for code in counts)
    ]
    assert not missing, {op: dict(statuses[op]) for op in missing}
    assert not any(code >= 500 for counts in statuses.values() for code in counts), statuses
