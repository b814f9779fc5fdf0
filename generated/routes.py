# DO NOT EDIT: `make generate` (tools/generate.py) writes this file from contracts/openapi.yaml.

"""Route table and Connexion glue for contracts/openapi.yaml.

Each operation's handler is `app.entrypoints.http.<first tag>.<operationId>`. An operation whose module or function
does not exist yet is served by a stub answering 501 application/problem+json that names the operationId,
and is logged at startup. An ImportError raised inside an existing handler module is not masked.

    import connexion
    from generated import routes

    app = connexion.FlaskApp(__name__)
    routes.add_api(app)  # spec at /api/openapi.json, Swagger UI at /api/ui/
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connexion.exceptions import ProblemException, ResolverError
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolution, Resolver
from connexion.security import NO_VALUE, BearerSecurityHandler

logger = logging.getLogger(__name__)

SPEC_FILE = Path(__file__).resolve().parents[1] / "contracts" / "openapi.yaml"
HANDLER_PACKAGE = "app.entrypoints.http"
# House convention: the spec is served at /api/openapi.json and Swagger UI at /api/ui/ while the paths of
# the spec are absolute (/api/..., /analytics/...), so the API is mounted at the root.
SPEC_URL_PATH = "/api/openapi.json"
SWAGGER_UI_PATH = "/api/ui"


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    module: str  # first tag: the handler module under HANDLER_PACKAGE
    scopes: tuple[str, ...]  # required scopes; () for public operations
    public: bool


OPERATIONS: dict[str, Operation] = {
    "create_miner": Operation("create_miner", "POST", "/api/miners", "miners", ("miners:write",), False),
    "list_miners": Operation("list_miners", "GET", "/api/miners", "miners", ("miners:read",), False),
    "bulk_import_miners": Operation(
        "bulk_import_miners", "POST", "/api/miners/bulk", "miners", ("miners:write",), False
    ),
    "get_miner": Operation("get_miner", "GET", "/api/miners/{id}", "miners", ("miners:read",), False),
    "update_miner": Operation("update_miner", "PATCH", "/api/miners/{id}", "miners", ("miners:write",), False),
    "change_miner_status": Operation(
        "change_miner_status", "PATCH", "/api/miners/{id}/status", "miners", ("miners:write",), False
    ),
    "list_miner_models": Operation(
        "list_miner_models", "GET", "/api/miner-models", "miner_models", ("miners:read",), False
    ),
    "get_portfolio": Operation("get_portfolio", "GET", "/api/portfolio", "portfolio", ("portfolio:read",), False),
    "get_forecast": Operation(
        "get_forecast", "GET", "/api/intelligence/forecast", "intelligence", ("intel:read",), False
    ),
    "execute_trade": Operation(
        "execute_trade", "POST", "/api/treasury/execute", "treasury", ("treasury:trade",), False
    ),
    "put_treasury_credentials": Operation(
        "put_treasury_credentials", "PUT", "/api/treasury/credentials", "treasury", ("treasury:trade",), False
    ),
    "record_market_snapshot": Operation(
        "record_market_snapshot", "POST", "/api/market/snapshots", "market", ("market:write",), False
    ),
    "schedule_maintenance": Operation(
        "schedule_maintenance", "POST", "/api/ops/maintenance", "ops", ("ops:write",), False
    ),
    "get_ops_schedule": Operation("get_ops_schedule", "GET", "/api/ops/schedule", "ops", ("ops:read",), False),
    "change_subscription": Operation(
        "change_subscription", "PUT", "/api/subscription", "billing", ("billing:write",), False
    ),
    "get_health": Operation("get_health", "GET", "/api/health", "health", ("ops:read",), False),
    "get_metrics": Operation("get_metrics", "GET", "/metrics", "observability", (), True),
    "analytics_main": Operation("analytics_main", "GET", "/analytics/main", "analytics", ("portfolio:read",), False),
    "analytics_stream": Operation(
        "analytics_stream", "GET", "/analytics/stream", "analytics", ("portfolio:read",), False
    ),
    "add_miner_form": Operation("add_miner_form", "POST", "/analytics/miners", "analytics", ("miners:write",), False),
    "change_miner_status_form": Operation(
        "change_miner_status_form", "POST", "/analytics/miners/{id}/status", "analytics", ("miners:write",), False
    ),
    "login_form": Operation("login_form", "GET", "/analytics/login", "auth", (), True),
    "login": Operation("login", "POST", "/analytics/login", "auth", (), True),
}


def handler_path(operation_id: str, package: str = HANDLER_PACKAGE) -> str:
    return f"{package}.{OPERATIONS[operation_id].module}.{operation_id}"


def not_implemented(operation_id: str, package: str = HANDLER_PACKAGE) -> Callable[..., Any]:
    """A handler that answers 501 for an operation of the contract without an implementation."""
    op = OPERATIONS[operation_id]

    def stub(*args: Any, **kwargs: Any) -> Any:
        raise ProblemException(
            status=501,
            title="Not Implemented",
            detail=f"Operation {operation_id} ({op.method} {op.path}) has no handler yet: "
            f"{handler_path(operation_id, package)} is missing.",
            type="urn:hashinsight:problem:not-implemented",
        )

    stub.__name__ = operation_id
    stub.__qualname__ = f"not_implemented.{operation_id}"
    return stub


def load_handler(operation_id: str, package: str = HANDLER_PACKAGE) -> tuple[Callable[..., Any], bool]:
    """(handler, implemented) for an operationId of the table."""
    module_name, _, function_name = handler_path(operation_id, package).rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only a missing handler module (or package) means "not implemented"; anything the module itself
        # fails to import is a real error and propagates.
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            return not_implemented(operation_id, package), False
        raise
    function = getattr(module, function_name, None)
    if function is None:
        return not_implemented(operation_id, package), False
    if not callable(function):
        raise ResolverError(f"{module_name}.{function_name} is not callable")
    return function, True


class ContractResolver(Resolver):
    """Resolves operationId -> HANDLER_PACKAGE.<first tag>.<operationId>, or a 501 stub."""

    def __init__(self, package: str = HANDLER_PACKAGE) -> None:
        super().__init__()
        self.package = package
        self.stubbed: set[str] = set()

    def resolve(self, operation: Any) -> Resolution:
        operation_id = operation.operation_id
        if operation_id not in OPERATIONS:
            raise ResolverError(f"operationId {operation_id!r} is not in generated/routes.py: run `make generate`")
        function, implemented = load_handler(operation_id, self.package)
        if not implemented and operation_id not in self.stubbed:
            self.stubbed.add(operation_id)
            logger.warning(
                "operation %s has no handler %s: answering 501", operation_id, handler_path(operation_id, self.package)
            )
        return Resolution(function, operation_id)


class ScopedBearerSecurityHandler(BearerSecurityHandler):
    """Bearer handler that passes the operation's scopes to x-bearerInfoFunc as `required_scopes`.

    Connexion 3 passes required_scopes to apiKey and oauth2 handlers but not to http bearer ones (it calls
    the token function with required_scopes=None), so without this the token function cannot answer 403.
    """

    # Connexion asks, on every request, whether the token function takes `required_scopes` and `request`, by
    # inspecting its signature; the answer never changes for a function, so it is remembered.
    _accepts_kwarg = staticmethod(functools.cache(BearerSecurityHandler._accepts_kwarg))

    def get_fn(self, security_scheme: dict[str, Any], required_scopes: list[str]) -> Any:
        token_info_func = self._resolve_func(security_scheme)
        if not token_info_func:
            logger.warning("... %s missing", self.security_definition_key)
            return None
        check = self.check_bearer_token(token_info_func)

        def wrapper(request: Any) -> Any:
            auth_type, token = self.get_auth_header_value(request)
            if auth_type != "bearer":
                return NO_VALUE
            return check(request, token, required_scopes=required_scopes)

        return wrapper


def resolver(package: str = HANDLER_PACKAGE) -> ContractResolver:
    return ContractResolver(package)


def security_map() -> dict[str, type]:
    return {"bearer": ScopedBearerSecurityHandler}


def swagger_ui_options() -> SwaggerUIOptions:
    return SwaggerUIOptions(spec_path=SPEC_URL_PATH, swagger_ui_path=SWAGGER_UI_PATH)


def api_options(package: str = HANDLER_PACKAGE) -> dict[str, Any]:
    """The add_api() keyword arguments the contract needs."""
    return {
        "resolver": resolver(package),
        "security_map": security_map(),
        "swagger_ui_options": swagger_ui_options(),
    }


def add_api(app: Any, specification: Any = SPEC_FILE, **overrides: Any) -> Any:
    """app.add_api(contracts/openapi.yaml) with the resolver, scoped bearer auth and the house URLs."""
    options = api_options()
    options.update(overrides)
    return app.add_api(specification, **options)
