"""`make contracts-check`: validate contracts/ and gate Avro schema changes on BACKWARD compatibility.

Checks, each reported with the file and the place that fails:
  * openapi.yaml validates (openapi-spec-validator) and follows the house rules: every operation has a
    snake_case operationId and a first tag naming its handler module, examples that match their schemas,
    explicit security (scopes from info.x-scopes, `security: []` when public, a `{}` alternative when the token
    is optional), problem+json errors,
    rate-limit headers on 429 and an Idempotency-Key on authenticated writes;
  * asyncapi.yaml validates against the official AsyncAPI 3.0.0 JSON Schema (vendored in contracts/meta/),
    every channel carries the Kafka bindings topic creation reads, and every message payload resolves to
    an .avsc that parses, with examples that the schemas accept;
  * every .avsc parses with fastavro, has the house namespace and a doc on every field;
  * BACKWARD compatibility: every .avsc of the last released contract (contracts/released/avro/, the baseline
    kept in the repository) must still be readable: a changed schema must read records written with the released
    one, and a released schema may not disappear. A clean checkout therefore compares HEAD with the release,
    never HEAD with itself. The registry enforces the same rule on the event subjects (tools/topics.py).

Cutting a release: once a contract change has shipped, copy contracts/avro/*.avsc over contracts/released/avro/
and set contracts/released/VERSION (`python -m tools.contracts_check --cut-release 0.2.0` does both).

Usage: python -m tools.contracts_check [--contracts DIR] [--baseline DIR | --baseline-rev REV] [--cut-release V]
The other tools import the loaders below (load_yaml, iter_operations, resolve_ref).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro
import jsonschema
import yaml
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import OpenAPIV30SpecValidator

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = REPO_ROOT / "contracts"
AVRO_NAMESPACE = "io.hashinsight.events"
ASYNCAPI_META_SCHEMA = "meta/asyncapi-3.0.0.schema.json"
AVRO_SCHEMA_FORMAT = re.compile(r"^application/vnd\.apache\.avro(\+(json|yaml))?;version=1\.\d+\.\d+$")

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
WRITE_METHODS = {"post", "put", "patch", "delete"}
RATE_LIMIT_HEADERS = ("Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
PROBLEM_MEDIA_TYPE = "application/problem+json"
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
EVENT_KIND = re.compile(r"^[a-z]+\.[a-z][a-z_]*$")
# Topics the brief names; each must be a channel of asyncapi.yaml.
REQUIRED_TOPICS = ("events.miner", "events.treasury", "events.ops", "events.crm", "events.dlq")


# --------------------------------------------------------------------------------------------- loaders


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def resolve_ref(doc: dict[str, Any], node: Any) -> Any:
    """Follow local `#/...` references until a non-reference node; external refs are returned as is."""
    seen: set[str] = set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        ref = node["$ref"]
        if ref in seen:
            raise ValueError(f"reference cycle at {ref}")
        seen.add(ref)
        target: Any = doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                raise KeyError(f"unresolvable reference {ref}")
            target = target[part]
        node = target
    return node


@dataclass(frozen=True)
class Operation:
    """One OpenAPI operation, with its path-level parameters merged in."""

    path: str
    method: str
    spec: dict[str, Any]
    parameters: tuple[dict[str, Any], ...]

    @property
    def operation_id(self) -> str | None:
        return self.spec.get("operationId")

    @property
    def module(self) -> str | None:
        tags = self.spec.get("tags") or []
        return tags[0] if tags else None

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"


def iter_operations(doc: dict[str, Any]) -> Iterator[Operation]:
    """Operations in document order (the order of generated tables and docs)."""
    for path, item in (doc.get("paths") or {}).items():
        item = resolve_ref(doc, item)
        shared = [resolve_ref(doc, p) for p in item.get("parameters", [])]
        for method in item:
            if method not in HTTP_METHODS:
                continue
            spec = item[method]
            own = [resolve_ref(doc, p) for p in spec.get("parameters", [])]
            names = {(p.get("in"), p.get("name")) for p in own}
            merged = [p for p in shared if (p.get("in"), p.get("name")) not in names] + own
            yield Operation(path=path, method=method, spec=spec, parameters=tuple(merged))


def operation_scopes(op: Operation) -> tuple[str, ...]:
    """The scopes of the first security requirement (all alternatives must agree, see check_openapi)."""
    for requirement in op.spec.get("security") or []:
        for scopes in requirement.values():
            return tuple(scopes)
    return ()


def success_response(doc: dict[str, Any], op: Operation) -> tuple[str, dict[str, Any]] | None:
    for status, response in (op.spec.get("responses") or {}).items():
        if str(status)[0] in "23":
            return str(status), resolve_ref(doc, response)
    return None


def media_example(doc: dict[str, Any], media: dict[str, Any]) -> tuple[bool, Any]:
    """(has an example, the first example value) of a media type object."""
    if "example" in media:
        return True, media["example"]
    examples = media.get("examples") or {}
    for example in examples.values():
        example = resolve_ref(doc, example)
        if "value" in example:
            return True, example["value"]
    return False, None


# --------------------------------------------------------------------------------------------- report


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")

    def note(self, message: str) -> None:
        self.notes.append(message)

    @property
    def ok(self) -> bool:
        return not self.errors


# --------------------------------------------------------------------------------------------- OpenAPI


def _example_errors(doc: dict[str, Any], schema: dict[str, Any], value: Any) -> list[str]:
    # Validate against the schema inside the whole document, so that `#/components/...` refs resolve.
    root = {"allOf": [schema], "components": doc.get("components", {})}
    validator = OAS30Validator(root, format_checker=OAS30Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(value)]


def _load_document(path: Path, report: Report) -> dict[str, Any] | None:
    """The YAML document at path, or None with the reason reported."""
    try:
        doc = load_yaml(path)
    except (OSError, yaml.YAMLError) as exc:
        report.error(path.name, f"cannot load: {exc}")
        return None
    if not isinstance(doc, dict):
        report.error(path.name, "not a mapping")
        return None
    return doc


def check_openapi(path: Path, report: Report) -> None:
    where = path.name
    doc = _load_document(path, report)
    if doc is None:
        return

    # Connexion 3.3 validates specs against the OpenAPI 3.0 meta-schema only.
    if not str(doc.get("openapi", "")).startswith("3.0."):
        report.error(where, f"openapi must be 3.0.x (Connexion 3.3 reads no other), got {doc.get('openapi')!r}")
    for err in OpenAPIV30SpecValidator(doc).iter_errors():
        place = "/".join(str(p) for p in err.path) or "<root>"
        report.error(where, f"invalid OpenAPI at {place}: {err.message}")

    servers = doc.get("servers") or []
    if not servers or servers[0].get("url") != "/":
        report.error(where, "servers[0].url must be '/': paths are absolute and served at the root")

    tags = {t.get("name") for t in doc.get("tags") or []}
    schemes = (doc.get("components") or {}).get("securitySchemes") or {}
    known_scopes = set(((doc.get("info") or {}).get("x-scopes") or {}).keys())
    if not known_scopes:
        report.error(where, "info.x-scopes must list the scopes operations may require")
    problem = "#/components/schemas/Problem"
    seen_ids: dict[str, str] = {}

    try:
        operations = list(iter_operations(doc))
    except (KeyError, ValueError) as exc:
        report.error(where, str(exc))
        return
    if not operations:
        report.error(where, "no operations")

    for op in operations:
        at = f"{where} {op.label}"
        spec = op.spec
        responses = {str(k): v for k, v in (spec.get("responses") or {}).items()}

        # operationId -> handler app.entrypoints.http.<first tag>.<operationId>
        op_id = op.operation_id
        if not op_id:
            report.error(at, "no operationId (it names the handler function)")
        elif not IDENTIFIER.match(op_id):
            report.error(at, f"operationId {op_id!r} is not a snake_case Python identifier")
        elif op_id in seen_ids:
            report.error(at, f"operationId {op_id!r} also used by {seen_ids[op_id]}")
        else:
            seen_ids[op_id] = op.label
        if not op.module:
            report.error(at, "no tags: the first tag names the handler module")
        elif not IDENTIFIER.match(op.module) or op.module not in tags:
            report.error(at, f"first tag {op.module!r} must be a snake_case tag declared under `tags`")

        # Security: explicit on every operation; [] means public.
        if "security" not in spec:
            report.error(at, "no `security` (list the scopes it needs, or `security: []` when public)")
            security = None
        else:
            security = spec["security"] or []
        if security:
            scope_sets = set()
            for requirement in security:
                for name, scopes in requirement.items():
                    if name not in schemes:
                        report.error(at, f"security scheme {name!r} is not defined")
                    if not scopes:
                        report.error(at, f"security {name!r} lists no scope")
                    unknown = set(scopes) - known_scopes
                    if unknown:
                        report.error(at, f"unknown scopes {sorted(unknown)} (not in info.x-scopes)")
                    scope_sets.add(tuple(sorted(scopes)))
            if len(scope_sets) > 1:
                report.error(at, "security alternatives must require the same scopes")
            # `{}` among the alternatives: the token is optional, and a missing or insufficient one falls back to
            # the public answer rather than a 401/403.
            optional = any(not requirement for requirement in security)
            for status in ("429",) if optional else ("401", "403", "429"):
                if status not in responses:
                    report.error(at, f"authenticated operation must declare a {status} response")

        # Writes: Idempotency-Key header on every authenticated write.
        param_names = {(p.get("in"), str(p.get("name", "")).lower()) for p in op.parameters}
        if op.method in WRITE_METHODS and security and ("header", "idempotency-key") not in param_names:
            report.error(at, "authenticated write without the Idempotency-Key header parameter")
        if (spec.get("requestBody") or op.parameters) and "400" not in responses:
            report.error(at, "takes input but declares no 400 response")

        # Examples: parameters, request body, success response; each must match its schema.
        for param in op.parameters:
            if param.get("required") and "example" not in param and "examples" not in param:
                report.error(at, f"required parameter {param.get('name')!r} has no example")
            if "example" in param and "schema" in param:
                for problem_text in _example_errors(doc, param["schema"], param["example"]):
                    report.error(at, f"example of parameter {param.get('name')!r} {problem_text}")
        if "requestBody" in spec:
            body = resolve_ref(doc, spec["requestBody"])
            for media_type, media in (body.get("content") or {}).items():
                has, value = media_example(doc, media)
                if not has:
                    report.error(at, f"request body {media_type} has no example")
                elif "schema" in media:
                    for problem_text in _example_errors(doc, media["schema"], value):
                        report.error(at, f"request example ({media_type}) {problem_text}")
        success = success_response(doc, op)
        if success is None:
            report.error(at, "no 2xx/3xx response")
        else:
            status, response = success
            for media_type, media in (response.get("content") or {}).items():
                has, value = media_example(doc, media)
                if not has:
                    report.error(at, f"{status} response {media_type} has no example")
                elif "schema" in media:
                    for problem_text in _example_errors(doc, media["schema"], value):
                        report.error(at, f"{status} response example ({media_type}) {problem_text}")

        # Errors: problem+json with the shared Problem schema; 429 with the rate-limit headers.
        for status, response in responses.items():
            if status[:1] not in "45":
                continue
            try:
                response = resolve_ref(doc, response)
            except KeyError as exc:
                report.error(at, str(exc))
                continue
            content = response.get("content") or {}
            if list(content) != [PROBLEM_MEDIA_TYPE]:
                report.error(at, f"{status} must have exactly one content type, {PROBLEM_MEDIA_TYPE}")
            elif (content[PROBLEM_MEDIA_TYPE].get("schema") or {}).get("$ref") != problem:
                report.error(at, f"{status} schema must be {problem}")
            if status == "429":
                missing = [h for h in RATE_LIMIT_HEADERS if h not in (response.get("headers") or {})]
                if missing:
                    report.error(at, f"429 lacks headers {missing}")


# --------------------------------------------------------------------------------------------- Avro


def load_avsc(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def check_avro(avro_dir: Path, report: Report) -> dict[str, dict[str, Any]]:
    """Parse every .avsc; return the parsed schemas by file name."""
    parsed: dict[str, dict[str, Any]] = {}
    files = sorted(avro_dir.glob("*.avsc"))
    if not files:
        report.error(str(avro_dir), "no .avsc files")
    for path in files:
        where = f"avro/{path.name}"
        try:
            raw = load_avsc(path)
            parsed[path.name] = fastavro.parse_schema(raw)
        except (OSError, ValueError, fastavro.schema.SchemaParseException, fastavro.schema.UnknownType) as exc:
            report.error(where, f"does not parse: {exc}")
            continue
        if raw.get("type") != "record":
            report.error(where, "top level must be a record")
            continue
        if raw.get("namespace") != AVRO_NAMESPACE:
            report.error(where, f"namespace must be {AVRO_NAMESPACE!r}")
        if not raw.get("doc"):
            report.error(where, "record has no doc")
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", raw.get("name", "")).lower()
        if path.stem != snake:
            report.error(where, f"file name must be {snake}.avsc for record {raw.get('name')}")
        for fld in raw.get("fields", []):
            if not fld.get("doc"):
                report.error(where, f"field {fld.get('name')!r} has no doc")
    return parsed


def _sample(schema: Any, named: dict[str, Any], i: int, depth: int = 0) -> Any:
    """Deterministic value #i for an Avro schema: cycles union branches, enum symbols and array lengths."""
    if isinstance(schema, str):
        if schema in named:
            return _sample(named[schema], named, i, depth)
        schema = {"type": schema}
    if isinstance(schema, list):
        return _sample(schema[i % len(schema)], named, i, depth)
    kind = schema["type"]
    if isinstance(kind, (dict, list)):
        return _sample(kind, named, i, depth)
    if kind in ("record", "error"):
        named[schema["name"]] = schema
        if "namespace" in schema:
            named[f"{schema['namespace']}.{schema['name']}"] = schema
        return {f["name"]: _sample(f["type"], named, i + n, depth + 1) for n, f in enumerate(schema["fields"])}
    if kind == "enum":
        named[schema["name"]] = schema
        return schema["symbols"][i % len(schema["symbols"])]
    if kind == "fixed":
        named[schema["name"]] = schema
        return bytes([i % 256]) * schema["size"]
    if kind == "array":
        return [_sample(schema["items"], named, i + n, depth + 1) for n in range(i % 3 if depth < 4 else 0)]
    if kind == "map":
        return {f"k{n}": _sample(schema["values"], named, i + n, depth + 1) for n in range(i % 3 if depth < 4 else 0)}
    if kind == "null":
        return None
    if kind == "boolean":
        return i % 2 == 1
    if kind in ("int", "long"):
        return i * 7
    if kind in ("float", "double"):
        return i * 1.5
    if kind == "bytes":
        return f"b{i}".encode()
    if kind == "string":
        return str(uuid.UUID(int=i + 1)) if schema.get("logicalType") == "uuid" else f"s{i}"
    raise ValueError(f"unsupported Avro type {kind!r}")


def sample_records(schema: dict[str, Any], count: int = 12) -> list[Any]:
    return [_sample(schema, {}, i) for i in range(count)]


def backward_problems(old_raw: dict[str, Any], new_raw: dict[str, Any]) -> list[str]:
    """Why data written with `old_raw` cannot be read with `new_raw` (empty when BACKWARD compatible)."""
    try:
        old = fastavro.parse_schema(old_raw)
        new = fastavro.parse_schema(new_raw)
    except Exception as exc:  # a schema that does not parse is reported by check_avro
        return [f"does not parse: {exc}"]
    problems: list[str] = []
    for n, record in enumerate(sample_records(old_raw)):
        buf = io.BytesIO()
        try:
            fastavro.schemaless_writer(buf, old, record)
            buf.seek(0)
            fastavro.schemaless_reader(buf, old, new)
        except Exception as exc:
            problems.append(f"sample {n} written with the old schema cannot be read with the new one: {exc}")
            break
    return problems


def check_backward_dirs(old_dir: Path, new_dir: Path, report: Report) -> None:
    """Every .avsc of new_dir that also exists in old_dir must read data written with the old version."""
    for new_path in sorted(new_dir.glob("*.avsc")):
        old_path = old_dir / new_path.name
        if not old_path.exists():
            report.note(f"avro/{new_path.name}: new schema, no compatibility baseline")
            continue
        _compare(new_path.name, old_path.read_text(encoding="utf-8"), new_path.read_text(encoding="utf-8"), report)
    for old_path in sorted(old_dir.glob("*.avsc")):
        if not (new_dir / old_path.name).exists():
            report.error(f"avro/{old_path.name}", "schema removed; consumers of its records can no longer decode them")


def check_backward_git(contracts_dir: Path, rev: str, report: Report) -> None:
    """Compare contracts/avro/*.avsc with their version at `rev` (default HEAD)."""
    avro_dir = contracts_dir / "avro"

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=avro_dir, capture_output=True, text=True, check=False)

    if git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").returncode != 0:
        report.note(f"compatibility gate skipped: no commit {rev!r} to compare with (new repository?)")
        return
    for path in sorted(avro_dir.glob("*.avsc")):
        old = git("show", f"{rev}:./{path.name}")
        if old.returncode != 0:
            report.note(f"avro/{path.name}: not in {rev}, no compatibility baseline")
            continue
        _compare(path.name, old.stdout, path.read_text(encoding="utf-8"), report)


def _compare(name: str, old_text: str, new_text: str, report: Report) -> None:
    if old_text == new_text:
        return
    try:
        old_raw, new_raw = json.loads(old_text), json.loads(new_text)
    except json.JSONDecodeError as exc:
        report.error(f"avro/{name}", f"not JSON: {exc}")
        return
    problems = backward_problems(old_raw, new_raw)
    for problem_text in problems:
        report.error(f"avro/{name}", f"not BACKWARD compatible: {problem_text}")
    if not problems:
        report.note(f"avro/{name}: changed, BACKWARD compatible")


# --------------------------------------------------------------------------------------------- AsyncAPI


def _avsc_ref(node: Any) -> str | None:
    if isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].endswith(".avsc"):
        return node["$ref"]
    return None


def _as_avro_value(schema: Any, value: Any, named: dict[str, Any]) -> Any:
    """YAML examples cannot hold bytes: encode strings where the schema says bytes."""
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    if schema == "bytes" and isinstance(value, str):
        return value.encode()
    if isinstance(schema, list):
        for branch in schema:
            if branch == "bytes" and isinstance(value, str):
                return value.encode()
        return value
    if isinstance(schema, dict):
        if schema.get("type") == "record" and isinstance(value, dict):
            named[schema["name"]] = schema
            types = {f["name"]: f["type"] for f in schema["fields"]}
            return {k: _as_avro_value(types.get(k), v, named) for k, v in value.items()}
        if schema.get("type") in ("enum", "fixed"):
            named[schema["name"]] = schema
        if isinstance(schema.get("type"), (dict, list)) or schema.get("type") == "bytes":
            return _as_avro_value(schema["type"], value, named)
    return value


def _avro_valid(raw: dict[str, Any], parsed: dict[str, Any], value: Any) -> str | None:
    try:
        fastavro.validation.validate(_as_avro_value(raw, value, {}), parsed, raise_errors=True)
    except (fastavro.validation.ValidationError, ValueError, TypeError) as exc:
        return str(exc)
    return None


def check_asyncapi(path: Path, parsed_avro: dict[str, dict[str, Any]], report: Report) -> None:
    where = path.name
    contracts_dir = path.parent
    doc = _load_document(path, report)
    if doc is None:
        return

    meta = json.loads((contracts_dir / ASYNCAPI_META_SCHEMA).read_text(encoding="utf-8"))
    for err in sorted(jsonschema.Draft7Validator(meta).iter_errors(doc), key=lambda e: list(e.absolute_path)):
        place = "/".join(str(p) for p in err.absolute_path) or "<root>"
        report.error(where, f"invalid AsyncAPI 3.0.0 at {place}: {err.message[:300]}")
    if doc.get("asyncapi") != "3.0.0":
        report.error(where, "asyncapi must be 3.0.0 (the vendored meta-schema's version)")
        return

    referenced: set[str] = set()

    def avsc(ref: str, at: str) -> str | None:
        target = (path.parent / ref).resolve()
        if not target.exists():
            report.error(at, f"{ref} does not exist")
            return None
        if target.parent != (contracts_dir / "avro").resolve():
            report.error(at, f"{ref} must be in contracts/avro/")
            return None
        referenced.add(target.name)
        if target.name not in parsed_avro:
            report.error(at, f"{ref} does not parse")
            return None
        return target.name

    addresses: set[str] = set()
    for channel_id, channel in (doc.get("channels") or {}).items():
        at = f"{where} channel {channel_id}"
        channel = resolve_ref(doc, channel)
        address = channel.get("address")
        addresses.add(address)
        kafka = ((channel.get("bindings") or {}).get("kafka")) or {}
        if kafka.get("topic") != address:
            report.error(at, "bindings.kafka.topic must equal the address (topic creation reads it)")
        for key in ("partitions", "replicas"):
            if not isinstance(kafka.get(key), int):
                report.error(at, f"bindings.kafka.{key} is required")
        config = kafka.get("topicConfiguration") or {}
        for key in ("retention.ms", "cleanup.policy"):
            if key not in config:
                report.error(at, f"bindings.kafka.topicConfiguration.{key} is required")

        for message_id, message in (channel.get("messages") or {}).items():
            mat = f"{at} message {message_id}"
            try:
                message = resolve_ref(doc, message)
                payload = resolve_ref(doc, message.get("payload"))
            except KeyError as exc:
                report.error(mat, str(exc))
                continue
            name = message.get("name")
            if not isinstance(payload, dict) or not AVRO_SCHEMA_FORMAT.match(str(payload.get("schemaFormat"))):
                report.error(
                    mat, "payload must be an Avro multi-format schema (schemaFormat application/vnd.apache.avro)"
                )
                continue
            envelope_ref = _avsc_ref(payload.get("schema"))
            if envelope_ref is None:
                report.error(mat, "payload schema must be a $ref to an .avsc")
                continue
            value_file = avsc(envelope_ref, mat)
            kind_file = None
            if "x-payload-schema" in message:
                kind_ref = _avsc_ref(message["x-payload-schema"])
                if kind_ref is None:
                    report.error(mat, "x-payload-schema must be a $ref to an .avsc")
                else:
                    kind_file = avsc(kind_ref, mat)
                if not EVENT_KIND.match(str(name)):
                    report.error(mat, f"name {name!r} must be an event kind <domain>.<event>")
                elif f"events.{str(name).split('.')[0]}" != address:
                    report.error(mat, f"kind {name} belongs on events.{str(name).split('.')[0]}, not {address}")
            key = (((resolve_ref(doc, message.get("bindings")) or {}).get("kafka")) or {}).get("key")
            if not key:
                report.error(mat, "bindings.kafka.key is required (the record key, user_id)")
            examples = message.get("examples") or []
            if not examples:
                report.error(mat, "no example")
            for n, example in enumerate(examples):
                eat = f"{mat} example {n}"
                value = example.get("payload")
                if value_file:
                    raw = load_avsc(contracts_dir / "avro" / value_file)
                    problem_text = _avro_valid(raw, parsed_avro[value_file], value)
                    if problem_text:
                        report.error(eat, f"payload does not match {value_file}: {problem_text}")
                if kind_file and isinstance(value, dict):
                    if value.get("kind") != name:
                        report.error(eat, f"envelope kind {value.get('kind')!r} is not {name!r}")
                    try:
                        inner = json.loads(value.get("payload", ""))
                    except (TypeError, json.JSONDecodeError) as exc:
                        report.error(eat, f"envelope payload is not JSON text: {exc}")
                        continue
                    raw = load_avsc(contracts_dir / "avro" / kind_file)
                    problem_text = _avro_valid(raw, parsed_avro[kind_file], inner)
                    if problem_text:
                        report.error(eat, f"envelope payload does not match {kind_file}: {problem_text}")

    for topic in REQUIRED_TOPICS:
        if topic not in addresses:
            report.error(where, f"no channel for topic {topic}")
    for name in sorted(set(parsed_avro) - referenced):
        report.error(f"avro/{name}", "not referenced by any AsyncAPI message (every schema must be reachable)")


# --------------------------------------------------------------------------------------------- main


RELEASED_DIR = "released"


def check_all(
    contracts_dir: Path = CONTRACTS_DIR,
    baseline_dir: Path | None = None,
    baseline_rev: str | None = None,
) -> Report:
    """Run every check. The compatibility baseline is `baseline_dir` (an avro/ dir), git `baseline_rev`, or by
    default the released contract kept in `contracts_dir/released/avro`."""
    report = Report()
    check_openapi(contracts_dir / "openapi.yaml", report)
    parsed = check_avro(contracts_dir / "avro", report)
    check_asyncapi(contracts_dir / "asyncapi.yaml", parsed, report)
    if baseline_rev is not None:
        check_backward_git(contracts_dir, baseline_rev, report)
        return report
    baseline = baseline_dir if baseline_dir is not None else contracts_dir / RELEASED_DIR / "avro"
    if not sorted(baseline.glob("*.avsc")):
        report.error(str(baseline), "no released .avsc to compare with: the compatibility gate cannot run")
    else:
        check_backward_dirs(baseline, contracts_dir / "avro", report)
    return report


def cut_release(contracts_dir: Path, version: str) -> list[str]:
    """Make the current Avro schemas the released baseline; returns the files copied."""
    target = contracts_dir / RELEASED_DIR / "avro"
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("*.avsc"):
        old.unlink()
    copied = []
    for path in sorted((contracts_dir / "avro").glob("*.avsc")):
        (target / path.name).write_bytes(path.read_bytes())
        copied.append(path.name)
    (contracts_dir / RELEASED_DIR / "VERSION").write_text(version + "\n")
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contracts", type=Path, default=CONTRACTS_DIR, help="contracts directory")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--baseline", type=Path, help="avro/ directory holding the previous schemas")
    group.add_argument("--baseline-rev", default=None, help="git revision holding the previous schemas")
    parser.add_argument("--cut-release", metavar="VERSION", help="make the current Avro schemas the baseline")
    args = parser.parse_args(argv)
    if args.cut_release:
        report = check_all(args.contracts, args.baseline, args.baseline_rev)
        if not report.ok:
            for error in report.errors:
                print(f"ERROR {error}", file=sys.stderr)
            print("contracts-check: not cutting a release from contracts that fail the checks", file=sys.stderr)
            return 1
        copied = cut_release(args.contracts, args.cut_release)
        print(f"released {args.cut_release}: {len(copied)} schemas in {args.contracts / RELEASED_DIR}")
        return 0

    report = check_all(args.contracts, args.baseline, args.baseline_rev)
    for note in report.notes:
        print(f"note: {note}")
    for error in report.errors:
        print(f"ERROR {error}", file=sys.stderr)
    if report.ok:
        print(f"contracts-check: OK ({args.contracts})")
        return 0
    print(f"contracts-check: {len(report.errors)} error(s)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
