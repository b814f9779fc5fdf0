"""Connexion's JSON request-body validator, hardened and with field-level errors.

Differences from connexion.validators.JSONRequestBodyValidator (plugged in through `validator_map`):

- a body that is not UTF-8, or JSON with NaN / Infinity / numbers that overflow to inf, is a 400 (Connexion
  would raise UnicodeDecodeError -> 500, or accept NaN, which PostgreSQL's CHECKs treat as the largest
  number and our JSON responses cannot carry);
- the 400 problem lists the offending fields in `errors` ([{field: "items[3].model_id", message}], at most
  MAX_FIELD_ERRORS), as the contract's description promises; `detail` stays Connexion's first message;
- the compiled jsonschema validator is built once per operation instead of once per request.
"""

from __future__ import annotations

import json
import logging
import math
import typing as t
from functools import cached_property

from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem
from connexion.json_schema import Draft4RequestValidator, format_error_with_path
from connexion.validators import VALIDATOR_MAP as CONNEXION_VALIDATORS
from connexion.validators import JSONRequestBodyValidator
from jsonschema import Draft4Validator
from starlette.types import Scope

log = logging.getLogger(__name__)

MAX_FIELD_ERRORS = 50


def field_path(path: t.Iterable[t.Any]) -> str:
    """jsonschema's deque path -> `items[3].model_id`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(body)"


def _reject_constant(name: str) -> t.Any:
    raise ValueError(f"{name} is not a valid JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


class StrictJSONRequestBodyValidator(JSONRequestBodyValidator):
    @cached_property
    def _compiled(self) -> Draft4Validator:
        return Draft4RequestValidator(self._schema, format_checker=Draft4Validator.FORMAT_CHECKER)

    async def _parse(self, stream: t.AsyncGenerator[bytes, None], scope: Scope) -> t.Any:
        raw = b"".join([message async for message in stream])
        try:
            body = raw.decode(self._encoding)
        except (UnicodeDecodeError, LookupError):
            raise BadRequestProblem(detail=f"Request body is not valid {self._encoding} text") from None
        if not body:
            return None
        try:
            return json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            raise BadRequestProblem(detail=f"Request body is not valid JSON: {exc}"[:1000]) from None

    def _validate(self, body: t.Any) -> dict | None:
        if not self._nullable and body is None:
            raise BadRequestProblem(detail="Request body must not be empty")
        errors = []
        first = None
        for error in self._compiled.iter_errors(body):
            first = first or error
            errors.append({"field": field_path(error.absolute_path)[:200], "message": error.message[:1000]})
            if len(errors) >= MAX_FIELD_ERRORS:
                break
        if first is None:
            return None
        detail = f"{first.message}{format_error_with_path(exception=first)}"
        log.info("request body invalid: %s", detail)
        problem = BadRequestProblem(detail=detail)
        problem.ext = {"errors": errors}
        raise problem


VALIDATOR_MAP: dict[str, t.Any] = {
    **CONNEXION_VALIDATORS,
    "body": MediaTypeDict({**CONNEXION_VALIDATORS["body"], "*/*json": StrictJSONRequestBodyValidator}),
}
