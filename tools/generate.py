"""`make generate`: write generated/ from contracts/ (never edit generated/ by hand).

  generated/api.py              pydantic v2 models of openapi.yaml's components.schemas
  generated/events/<name>.py    pydantic v2 models of each contracts/avro/<name>.avsc
  generated/events/__init__.py  EVENT_MODELS (kind -> payload model) and TOPIC_OF_KIND, from asyncapi.yaml
  generated/routes.py           the operation table and the Connexion resolver (501 stub when no handler)
  generated/asyncapi-html/      HTML docs of asyncapi.yaml (npm @asyncapi/cli + html-template, tools/asyncapi_docs.py),
                                served at /api/events/

Everything is written to a temporary directory first, formatted with a pinned, config-independent ruff
invocation, then copied; so the output depends only on contracts/ and the pinned tool versions.

Usage: python -m tools.generate [--out DIR] [--check]
  --out DIR   write there instead of generated/ (the test regenerates into a temporary directory)
  --check     write nothing; exit 1 and show a diff when DIR differs from what would be generated
"""

from __future__ import annotations

import argparse
import difflib
import filecmp
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tools import asyncapi_docs
from tools.contracts_check import (
    CONTRACTS_DIR,
    REPO_ROOT,
    iter_operations,
    load_yaml,
    operation_scopes,
    resolve_ref,
)

GENERATED_DIR = REPO_ROOT / "generated"
HANDLER_PACKAGE = "app.entrypoints.http"
DO_NOT_EDIT = "# DO NOT EDIT: `make generate` (tools/generate.py) writes this file from contracts/{source}.\n"

# Pinned datamodel-code-generator flags. Formatting is off here and done by format_tree() instead,
# because datamodel-codegen runs ruff with the output directory's config, which differs for --out.
DATAMODEL_FLAGS = [
    "--output-model-type", "pydantic_v2.BaseModel",
    "--target-python-version", "3.10",
    "--disable-timestamp",
    "--use-standard-collections",
    "--use-union-operator",
    "--field-constraints",
    "--use-schema-description",
    "--use-double-quotes",
    "--use-subclass-enum",
    "--collapse-root-models",
    "--no-formatters",
]  # fmt: skip
OPENAPI_FLAGS = [
    "--input-file-type", "openapi",
    "--openapi-scopes", "schemas",
    # OpenAPI 3.0 `nullable: true` on a required property means "present, may be null".
    "--strict-nullable",
]  # fmt: skip
AVRO_FLAGS = ["--input-file-type", "avro"]


def run(cmd: list[str], cwd: Path) -> None:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"command failed ({result.returncode}): {' '.join(cmd)}\n{result.stdout}{result.stderr}")


def datamodel(source: Path, output: Path, flags: list[str], cwd: Path) -> None:
    cmd = [sys.executable, "-m", "datamodel_code_generator", "--input", str(source), "--output", str(output)]
    run([*cmd, *flags, *DATAMODEL_FLAGS], cwd)


def format_tree(root: Path) -> None:
    """isort + format every .py under root with explicit settings and no config file (--isolated)."""
    ruff = [sys.executable, "-m", "ruff"]
    run([*ruff, "check", "--isolated", "--no-cache", "--select", "I", "--fix", "--quiet", "."], root)
    run([*ruff, "format", "--isolated", "--no-cache", "--line-length", "120", "--quiet", "."], root)


def prepend(path: Path, header: str) -> None:
    path.write_text(header + path.read_text(encoding="utf-8"), encoding="utf-8")


# --------------------------------------------------------------------------------------------- events


def event_registry(contracts: Path) -> tuple[list[tuple[str, str, str, str]], dict[str, str]]:
    """(kind, module, class, topic) for each message with an x-payload-schema, and module -> class for all .avsc."""
    classes = {}
    for path in sorted((contracts / "avro").glob("*.avsc")):
        classes[path.stem] = json.loads(path.read_text(encoding="utf-8"))["name"]
    doc = load_yaml(contracts / "asyncapi.yaml")
    kinds = []
    for channel in (doc.get("channels") or {}).values():
        channel = resolve_ref(doc, channel)
        for message in (channel.get("messages") or {}).values():
            message = resolve_ref(doc, message)
            ref = (message.get("x-payload-schema") or {}).get("$ref")
            if ref:
                module = Path(ref).stem
                kinds.append((message["name"], module, classes[module], channel["address"]))
    return sorted(kinds), classes


def render_events_init(contracts: Path) -> str:
    kinds, classes = event_registry(contracts)
    imports = "\n".join(f"from .{module} import {cls}" for module, cls in sorted(classes.items()))
    models = "\n".join(f'    "{kind}": {cls},' for kind, _, cls, _ in kinds)
    schemas = "\n".join(f'    "{kind}": CONTRACTS_DIR / "avro" / "{module}.avsc",' for kind, module, _, _ in kinds)
    topics = "\n".join(f'    "{kind}": "{topic}",' for kind, _, _, topic in kinds)
    exported = sorted([*classes.values(), "EVENT_MODELS", "EVENT_SCHEMAS", "TOPIC_OF_KIND", "model_for"])
    return f'''{DO_NOT_EDIT.format(source="asyncapi.yaml and contracts/avro/")}
"""Event models by kind.

EventEnvelope is the value of every events.* record; its `payload` is JSON text that EVENT_MODELS[kind]
validates. DeadLetter is the value of events.dlq records. Unknown payload fields are ignored (pydantic's
default), so producers can add fields (with Avro defaults) before consumers know them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

{imports}

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"
ENVELOPE_SCHEMA = CONTRACTS_DIR / "avro" / "event_envelope.avsc"
DEAD_LETTER_SCHEMA = CONTRACTS_DIR / "avro" / "dead_letter.avsc"

# Event kind -> pydantic model of its payload.
EVENT_MODELS: dict[str, type[BaseModel]] = {{
{models}
}}

# Event kind -> Avro schema of its payload.
EVENT_SCHEMAS: dict[str, Path] = {{
{schemas}
}}

# Event kind -> the topic it travels on (the AsyncAPI channel that lists it).
TOPIC_OF_KIND: dict[str, str] = {{
{topics}
}}


def model_for(kind: str) -> type[BaseModel]:
    """The payload model of `kind`; KeyError naming the known kinds otherwise."""
    try:
        return EVENT_MODELS[kind]
    except KeyError:
        raise KeyError(f"unknown event kind {{kind!r}}; known: {{', '.join(sorted(EVENT_MODELS))}}") from None


__all__ = {json.dumps(exported)}
'''


# --------------------------------------------------------------------------------------------- routes

ROUTES_TEMPLATE = '''{header}
"""Route table and Connexion glue for contracts/openapi.yaml.

Each operation's handler is `{package}.<first tag>.<operationId>`. An operation whose module or function
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
HANDLER_PACKAGE = "{package}"
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


OPERATIONS: dict[str, Operation] = {{
{operations}
}}


def handler_path(operation_id: str, package: str = HANDLER_PACKAGE) -> str:
    return f"{{package}}.{{OPERATIONS[operation_id].module}}.{{operation_id}}"


def not_implemented(operation_id: str, package: str = HANDLER_PACKAGE) -> Callable[..., Any]:
    """A handler that answers 501 for an operation of the contract without an implementation."""
    op = OPERATIONS[operation_id]

    def stub(*args: Any, **kwargs: Any) -> Any:
        raise ProblemException(
            status=501,
            title="Not Implemented",
            detail=f"Operation {{operation_id}} ({{op.method}} {{op.path}}) has no handler yet: "
            f"{{handler_path(operation_id, package)}} is missing.",
            type="urn:hashinsight:problem:not-implemented",
        )

    stub.__name__ = operation_id
    stub.__qualname__ = f"not_implemented.{{operation_id}}"
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
        raise ResolverError(f"{{module_name}}.{{function_name}} is not callable")
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
            raise ResolverError(
                f"operationId {{operation_id!r}} is not in generated/routes.py: run `make generate`"
            )
        function, implemented = load_handler(operation_id, self.package)
        if not implemented and operation_id not in self.stubbed:
            self.stubbed.add(operation_id)
            logger.warning("operation %s has no handler %s: answering 501", operation_id,
                           handler_path(operation_id, self.package))
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
    return {{"bearer": ScopedBearerSecurityHandler}}


def swagger_ui_options() -> SwaggerUIOptions:
    return SwaggerUIOptions(spec_path=SPEC_URL_PATH, swagger_ui_path=SWAGGER_UI_PATH)


def api_options(package: str = HANDLER_PACKAGE) -> dict[str, Any]:
    """The add_api() keyword arguments the contract needs."""
    return {{
        "resolver": resolver(package),
        "security_map": security_map(),
        "swagger_ui_options": swagger_ui_options(),
    }}


def add_api(app: Any, specification: Any = SPEC_FILE, **overrides: Any) -> Any:
    """app.add_api(contracts/openapi.yaml) with the resolver, scoped bearer auth and the house URLs."""
    options = api_options()
    options.update(overrides)
    return app.add_api(specification, **options)
'''


def render_routes(contracts: Path) -> str:
    doc = load_yaml(contracts / "openapi.yaml")
    lines = []
    for op in iter_operations(doc):
        public = op.spec.get("security") == []
        lines.append(
            f'    "{op.operation_id}": Operation("{op.operation_id}", "{op.method.upper()}", "{op.path}", '
            f'"{op.module}", {operation_scopes(op)!r}, {public}),'
        )
    return ROUTES_TEMPLATE.format(
        header=DO_NOT_EDIT.format(source="openapi.yaml"), package=HANDLER_PACKAGE, operations="\n".join(lines)
    )


# --------------------------------------------------------------------------------------------- main


def generate_into(target: Path, contracts: Path = CONTRACTS_DIR) -> None:
    """Write the whole generated/ tree into `target` (which must be empty or absent)."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "__init__.py").write_text(
        "# DO NOT EDIT: `make generate` (tools/generate.py) writes this package from contracts/.\n"
        '"""Code generated from contracts/: API models (api), event models (events), routes."""\n',
        encoding="utf-8",
    )
    with tempfile.TemporaryDirectory() as scratch:
        cwd = Path(scratch)
        datamodel(contracts / "openapi.yaml", target / "api.py", OPENAPI_FLAGS, cwd)
        prepend(target / "api.py", DO_NOT_EDIT.format(source="openapi.yaml"))
        events = target / "events"
        datamodel(contracts / "avro", events, AVRO_FLAGS, cwd)
    for path in sorted(events.glob("*.py")):
        if path.name != "__init__.py":
            prepend(path, DO_NOT_EDIT.format(source=f"avro/{path.stem}.avsc"))
    (events / "__init__.py").write_text(render_events_init(contracts), encoding="utf-8")
    (target / "routes.py").write_text(render_routes(contracts), encoding="utf-8")
    format_tree(target)
    # Last: ruff must not see the HTML docs' JavaScript (it formats .py only, but walks the tree).
    asyncapi_docs.render(target / asyncapi_docs.OUT_NAME, contracts / "asyncapi.yaml")


def tree(root: Path) -> set[str]:
    if not root.exists():
        return set()
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def differences(expected: Path, actual: Path) -> list[str]:
    out = []
    want, have = tree(expected), tree(actual)
    for name in sorted(want - have):
        out.append(f"missing: {name}")
    for name in sorted(have - want):
        out.append(f"not generated (stale): {name}")
    for name in sorted(want & have):
        if not filecmp.cmp(expected / name, actual / name, shallow=False):
            if not name.endswith(".py"):  # the HTML docs: minified, a line diff would say nothing
                out.append(f"differs: {name}")
                continue
            diff = difflib.unified_diff(
                (actual / name).read_text(encoding="utf-8").splitlines(keepends=True),
                (expected / name).read_text(encoding="utf-8").splitlines(keepends=True),
                fromfile=f"{actual.name}/{name} (committed)",
                tofile=f"{actual.name}/{name} (generated)",
            )
            out.append("".join(list(diff)[:60]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=GENERATED_DIR, help="directory to write (default generated/)")
    parser.add_argument("--contracts", type=Path, default=CONTRACTS_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 if stale")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch) / "generated"
        generate_into(fresh, args.contracts)
        diffs = differences(fresh, args.out)
        if args.check:
            if diffs:
                print("\n".join(diffs), file=sys.stderr)
                print(f"{args.out} is out of date with contracts/: run `make generate`", file=sys.stderr)
                return 1
            print(f"{args.out} is up to date")
            return 0
        if not diffs:
            print(f"{args.out}: unchanged")
            return 0
        # Replace only what we generate; leave __pycache__ alone.
        for name in tree(args.out) - tree(fresh):
            (args.out / name).unlink()
        for name in sorted(tree(fresh)):
            (args.out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(fresh / name, args.out / name)
        print(f"{args.out}: {len(diffs)} file(s) updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
