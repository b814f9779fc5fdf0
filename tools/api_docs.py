"""`make docs`: write docs/api-examples.md, one curl per operation, from the examples in contracts/openapi.yaml.

The file is generated so that it cannot drift from the spec; a test fails when it is stale.

Usage: python -m tools.api_docs [--out FILE] [--check]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from tools.contracts_check import (
    CONTRACTS_DIR,
    REPO_ROOT,
    Operation,
    iter_operations,
    load_yaml,
    media_example,
    operation_scopes,
    resolve_ref,
    success_response,
)

OUT_FILE = REPO_ROOT / "docs" / "api-examples.md"

HEADER = """# API examples

<!-- DO NOT EDIT: `make docs` (tools/api_docs.py) writes this file from the examples in contracts/openapi.yaml. -->

One curl per operation of [`contracts/openapi.yaml`](../contracts/openapi.yaml), built from the spec's own
examples. Each works against a freshly started system (`make dev` seeds the miner models and the demo miner
they name). First:

```bash
export BASE=http://127.0.0.1:8000
export TOKEN=$(make -s token)   # demo-user-1 of demo-tenant, with every scope
```

Writes send the example's `Idempotency-Key`: running one again replays the first result (header
`Idempotent-Replayed: true`) and writes no second event. Use a fresh key (e.g. `$(uuidgen)`) for a new write.
Without the key, running the status change twice is a 409, because the miner is already `idle`.
Errors are `application/problem+json`. The spec itself is at `$BASE/api/openapi.json`, Swagger UI at
`$BASE/api/ui/`.
"""


def _single_quoted(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _double_quoted(text: str) -> str:
    # Keeps $TOKEN / $BASE expandable; escapes what bash would otherwise interpret.
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`")
    return f'"{escaped}"'


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class ExampleRequest:
    """An operation's request as its examples spell it: what the curl shows and the example test sends."""

    method: str
    path: str  # path parameters filled in
    query: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    media_type: str | None
    body: Any  # the example body, or None
    form_properties: dict[str, Any]  # schema properties of a form body (for x-curl-value)


def example_request(doc: dict[str, Any], op: Operation) -> ExampleRequest:
    path = op.path
    query: list[tuple[str, str]] = []
    headers: list[tuple[str, str]] = []
    for param in op.parameters:
        if "example" not in param:
            continue
        value = _scalar(param["example"])
        where = param.get("in")
        if where == "path":
            path = path.replace("{" + param["name"] + "}", quote(value, safe=""))
        elif where == "query":
            query.append((param["name"], value))
        elif where == "header":
            headers.append((param["name"], value))
    media_type, body, form_properties = None, None, {}
    if "requestBody" in op.spec:
        request_body = resolve_ref(doc, op.spec["requestBody"])
        media_type, media = next(iter((request_body.get("content") or {}).items()))
        _, body = media_example(doc, media)
        if media_type == "application/x-www-form-urlencoded":
            form_properties = (resolve_ref(doc, media.get("schema", {})) or {}).get("properties", {})
    return ExampleRequest(op.method.upper(), path, query, headers, media_type, body, form_properties)


def curl(doc: dict[str, Any], op: Operation) -> str:
    request = example_request(doc, op)
    security = op.spec.get("security") or []
    schemes = [name for requirement in security for name in requirement]
    auth: list[str] = []
    if "bearerAuth" in schemes:
        auth = ["-H", '"Authorization: Bearer $TOKEN"']
    elif "cookieAuth" in schemes:
        auth = ["-b", '"hi_session=$TOKEN"']

    url = "$BASE" + request.path + ("?" + urlencode(request.query) if request.query else "")
    args: list[str] = ["curl", "-sS", "-i"]
    if request.method != "GET":
        args += ["-X", request.method]
    lines = [" ".join([*args, _double_quoted(url)])]
    if auth:
        lines.append(" ".join(auth))
    lines += [f"-H {shlex.quote(f'{name}: {value}')}" for name, value in request.headers]

    if request.media_type == "application/x-www-form-urlencoded":
        for name, value in request.body.items():
            override = (resolve_ref(doc, request.form_properties.get(name, {})) or {}).get("x-curl-value")
            field_value = override if override is not None else _scalar(value)
            lines.append(f"--data-urlencode {_double_quoted(f'{name}={field_value}')}")
    elif request.media_type is not None:
        lines.append(f"-H {shlex.quote('Content-Type: ' + request.media_type)}")
        lines.append(f"--data {_single_quoted(json.dumps(request.body, ensure_ascii=False))}")
    return " \\\n  ".join(lines)


def render(doc: dict[str, Any]) -> str:
    parts = [HEADER]
    for op in iter_operations(doc):
        scopes = operation_scopes(op)
        need = "Scopes: " + ", ".join(f"`{s}`" for s in scopes) if scopes else "Public"
        success = success_response(doc, op)
        expect = f"Expect `{success[0]}`." if success else ""
        summary = op.spec.get("summary", "").rstrip(".")
        parts.append(
            f"## `{op.operation_id}`: {op.method.upper()} {op.path}\n\n"
            f"{summary}. {need}. {expect}\n\n"
            f"```bash\n{curl(doc, op)}\n```\n"
        )
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT_FILE, help="file to write (default docs/api-examples.md)")
    parser.add_argument("--contracts", type=Path, default=CONTRACTS_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 if stale")
    args = parser.parse_args(argv)

    text = render(load_yaml(args.contracts / "openapi.yaml"))
    current = args.out.read_text(encoding="utf-8") if args.out.exists() else None
    if args.check:
        if current != text:
            print(f"{args.out} is out of date with contracts/openapi.yaml: run `make docs`", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    if current == text:
        print(f"{args.out}: unchanged")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"{args.out}: written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
