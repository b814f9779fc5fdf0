"""Connexion's request validators, hardened: bounded before parsing, concise field errors, storable text.

Plugged in through `validator_map` (app/entrypoints/app.py). Differences from Connexion's own:

- Bounded before parsing. A JSON body larger than its schema's `x-max-body-bytes` (DEFAULT_MAX_BODY_BYTES when
  the schema declares none) is a 413 on its Content-Length alone, before a byte is read. A top-level array with
  more items than its `maxItems` is a 413 found by counting (bounded_json.first_overflow), before the body is
  parsed in full or validated: a 100,000-item bulk import is refused in milliseconds.
- Concise problems. `detail` is "<field>: <what is wrong, with the limit>", `errors` lists each field the same
  way (at most MAX_FIELD_ERRORS); no schema dump and no long echo of the value (field_errors.py). Parameters
  (query, path, header) get the same wording.
- Storable text. A schema-valid body whose strings hold NUL (U+0000) or a lone surrogate, which PostgreSQL's
  text type cannot store, is a 422 naming each field, not a 500 from the driver.
- A body that is not UTF-8, or JSON with NaN / Infinity / numbers that overflow to inf, is a 400 (Connexion
  would raise UnicodeDecodeError -> 500, or accept NaN, which PostgreSQL's CHECKs treat as the largest number
  and our JSON responses cannot carry).
- The compiled jsonschema validator is built once per operation schema, not once per request.
- Secrets never echo: the values of the contract's secret fields (`password`, `api_key`, `api_secret`, wherever
  they sit in the body) are replaced by `***` in the detail, the field errors and the log line.
"""

from __future__ import annotations

import json
import logging
import math
import typing as t

from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem, ExtraParameterProblem
from connexion.json_schema import Draft4RequestValidator
from connexion.utils import is_null, is_nullable
from connexion.validators import VALIDATOR_MAP as CONNEXION_VALIDATORS
from connexion.validators import JSONRequestBodyValidator, ParameterValidator
from jsonschema import Draft4Validator
from starlette.datastructures import Headers
from starlette.types import Receive, Scope

from app.entrypoints.http.bounded_json import array_limits, first_overflow
from app.entrypoints.http.field_errors import MAX_FIELD_ERRORS, describe, echo, field_error, field_path, text_problems
from app.entrypoints.http.problems import TYPE_BODY_TOO_LARGE, ApiProblem, PayloadTooLarge, Unprocessable

log = logging.getLogger(__name__)

__all__ = ["VALIDATOR_MAP", "field_path", "DEFAULT_MAX_BODY_BYTES", "secret_values", "redact"]

DEFAULT_MAX_BODY_BYTES = 64 * 1024  # a single miner, status change or trade is well under 2 kB
TYPE_INVALID_TEXT = "urn:hashinsight:problem:invalid-text"
MAX_BODY_EXTENSION = "x-max-body-bytes"
EARLY_COUNT_BYTES = 1024 * 1024

# Operation schema -> its compiled validator. Keyed by identity: Connexion hands every request of an operation the
# same resolved schema object, which the entry also holds so the id can never be reused.
_COMPILED: dict[int, tuple[dict, Draft4Validator]] = {}

SECRET_FIELDS = frozenset({"password", "api_key", "api_secret"})
REDACTED = "***"


def secret_values(body: t.Any) -> list[str]:
    """The string values of secret fields anywhere in a JSON body, longest first (so no prefix survives)."""
    found: list[str] = []

    def walk(node: t.Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in SECRET_FIELDS and isinstance(value, str) and value:
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(body)
    return sorted(set(found), key=len, reverse=True)


def redact(text: str, secrets: t.Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED).replace(repr(secret)[1:-1], REDACTED)
    return text


def compiled(schema: dict) -> Draft4Validator:
    entry = _COMPILED.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = (schema, Draft4RequestValidator(schema, format_checker=Draft4Validator.FORMAT_CHECKER))
        _COMPILED[id(schema)] = entry
    return entry[1]


def _reject_constant(name: str) -> t.Any:
    raise ValueError(f"{name} is not a valid JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def max_body_bytes(schema: t.Mapping[str, t.Any]) -> int:
    declared = schema.get(MAX_BODY_EXTENSION) if isinstance(schema, t.Mapping) else None
    return int(declared) if isinstance(declared, int) and declared > 0 else DEFAULT_MAX_BODY_BYTES


class StrictJSONRequestBodyValidator(JSONRequestBodyValidator):
    async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
        limit = max_body_bytes(self._schema)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ApiProblem(413, f"Request body is larger than {limit} bytes (Content-Length {declared})",
                             type=TYPE_BODY_TOO_LARGE)
        return await super().wrap_receive(receive, scope=scope)

    async def _parse(self, stream: t.AsyncGenerator[bytes, None], scope: Scope) -> t.Any:
        limits = array_limits(self._schema)
        chunks: list[bytes] = []
        size, early_checked = 0, False
        async for chunk in stream:
            chunks.append(chunk)
            size += len(chunk)
            if limits and not early_checked and size >= EARLY_COUNT_BYTES:
                # One look at the first MiB: enough for limit+1 small items, so an oversized batch is refused
                # without decoding or counting the rest (which is drained, unread, so the client can finish).
                early_checked = True
                prefix = b"".join(chunks).decode(self._encoding, errors="ignore")
                overflow = first_overflow(prefix, limits)
                if overflow is not None:
                    async for _ in stream:
                        pass
                    self._too_many(overflow, limits[overflow])
        raw = b"".join(chunks)
        try:
            body = raw.decode(self._encoding)
        except (UnicodeDecodeError, LookupError):
            raise BadRequestProblem(detail=f"Request body is not valid {self._encoding} text") from None
        if not body:
            return None
        overflow = first_overflow(body, limits)
        if overflow is not None:
            self._too_many(overflow, limits[overflow])
        try:
            return json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            raise BadRequestProblem(detail=f"Request body is not valid JSON: {str(exc)[:200]}") from None

    @staticmethod
    def _too_many(name: str, limit: int) -> t.NoReturn:
        raise PayloadTooLarge(f"At most {limit} items in '{name}' per request; this one has more",
                              errors=[{"field": name, "message": f"must have at most {limit} items"}])

    def _validate(self, body: t.Any) -> dict | None:
        if not self._nullable and body is None:
            raise BadRequestProblem(detail="Request body must not be empty")
        errors = []
        hidden = secret_values(body)
        for error in compiled(self._schema).iter_errors(body):
            found = field_error(error)
            errors.append({"field": found["field"], "message": redact(found["message"], hidden)[:1000]})
            if len(errors) >= MAX_FIELD_ERRORS:
                break
        if errors:
            detail = f"{errors[0]['field']}: {errors[0]['message']}"
            log.info("request body invalid: %s", detail)
            problem = BadRequestProblem(detail=detail)
            problem.ext = {"errors": errors}
            raise problem
        bad_text = text_problems(body)
        if bad_text:
            raise Unprocessable(f"{bad_text[0]['field']}: {bad_text[0]['message']}", type=TYPE_INVALID_TEXT,
                                errors=bad_text)
        return None


class ConciseParameterValidator(ParameterValidator):
    """Connexion's parameter checks, with the same concise wording as bodies (no schema, no long echo)."""

    @staticmethod
    def validate_parameter(parameter_type: str, value: t.Any, param: dict, param_name: str | None = None) -> str | None:
        if is_nullable(param) and is_null(value):
            return None
        if value is not None:
            schema = param.get("schema", param)
            error = next(iter(compiled(schema).iter_errors(value)), None)
            if error is None:
                return None
            return f"{parameter_type} parameter '{param.get('name')}': {describe(error)}"
        if param.get("required"):
            return f"Missing {parameter_type} parameter '{param.get('name')}'"
        return None

    def validate_request(self, request: t.Any) -> None:
        try:
            super().validate_request(request)
        except ExtraParameterProblem:
            extra = sorted(self.validate_query_parameter_list(request, security_params=self.security_query_params))
            names = ", ".join(f"'{echo(n)}'" for n in extra[:5]) + (", ..." if len(extra) > 5 else "")
            raise BadRequestProblem(detail=f"Unknown query parameter(s) {names}") from None


VALIDATOR_MAP: dict[str, t.Any] = {
    **CONNEXION_VALIDATORS,
    "parameter": ConciseParameterValidator,
    "body": MediaTypeDict({**CONNEXION_VALIDATORS["body"], "*/*json": StrictJSONRequestBodyValidator}),
}
