"""Concise, human field errors: which field, what was wrong, and the limit. Never a schema dump, never a long
echo of what the client sent.

jsonschema's own messages repeat the offending value (a 200-character header came back in full, together
with its whole schema, several kB) and, for anyOf/oneOf, the whole instance. `describe` words each failure
from the schema keyword and its limit instead; `text_problems` finds the strings PostgreSQL cannot store.
"""

from __future__ import annotations

import typing as t

from jsonschema import ValidationError

ECHO_LIMIT = 40  # at most this many characters of a client's value appear in a message
MAX_FIELD_ERRORS = 50

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


def field_path(path: t.Iterable[t.Any]) -> str:
    """jsonschema's deque path -> `items[3].model_id`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(body)"


def echo(value: t.Any) -> str:
    """A short, printable rendering of a client's value for a message."""
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return text if len(text) <= ECHO_LIMIT else text[: ECHO_LIMIT - 3] + "..."


def _size(value: t.Any) -> str:
    return f" (got {len(value)})" if isinstance(value, (str, list, dict)) else ""


def describe(error: ValidationError) -> str:
    """What is wrong, in a few words, with the schema's limit; the caller adds the field name."""
    keyword, limit, value = error.validator, error.validator_value, error.instance
    if keyword == "type":
        kinds = limit if isinstance(limit, list) else [limit]
        return "must be " + " or ".join(_TYPE_WORDS.get(k, str(k)) for k in kinds)
    if keyword == "required":
        missing = next((name for name in limit if isinstance(value, dict) and name not in value), None)
        return f"'{missing}' is required" if missing else "a required property is missing"
    if keyword == "additionalProperties":
        allowed = set((error.schema or {}).get("properties", {}))
        extra = [k for k in value if k not in allowed] if isinstance(value, dict) else []
        names = ", ".join(f"'{echo(k)}'" for k in extra[:3]) + (", ..." if len(extra) > 3 else "")
        return f"unknown propert{'y' if len(extra) == 1 else 'ies'} {names}" if extra else "unknown property"
    if keyword == "enum":
        return "must be one of: " + ", ".join(str(v) for v in limit)
    if keyword == "minLength":
        return f"must be at least {limit} characters{_size(value)}"
    if keyword == "maxLength":
        return f"must be at most {limit} characters{_size(value)}"
    if keyword == "pattern":
        return f"must match {limit}"
    if keyword == "format":
        return f"must be a valid {limit}"
    if keyword in ("minimum", "maximum"):
        exclusive = bool((error.schema or {}).get("exclusiveMinimum" if keyword == "minimum" else "exclusiveMaximum"))
        op = (">" if exclusive else ">=") if keyword == "minimum" else ("<" if exclusive else "<=")
        return f"must be {op} {limit}"
    if keyword == "minItems":
        return f"must have at least {limit} item{'s' if limit != 1 else ''}{_size(value)}"
    if keyword == "maxItems":
        return f"must have at most {limit} items{_size(value)}"
    if keyword == "multipleOf":
        return f"must be a multiple of {limit}"
    if keyword in ("minProperties", "maxProperties"):
        word = "at least" if keyword == "minProperties" else "at most"
        return f"must have {word} {limit} properties{_size(value)}"
    if keyword == "uniqueItems":
        return "must not repeat items"
    if keyword in ("anyOf", "oneOf"):
        return "does not match any of the allowed forms"
    if keyword == "not":
        return "is not allowed here"
    return f"is invalid ({keyword})"


def field_error(error: ValidationError, prefix: str = "") -> dict[str, str]:
    name = prefix + field_path(error.absolute_path) if prefix else field_path(error.absolute_path)
    return {"field": name[:200], "message": describe(error)}


# -- text PostgreSQL cannot store ---------------------------------------------------------------------------------


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (U+0000), which text fields cannot hold"
    if any("\ud800" <= c <= "\udfff" for c in text):
        return "contains a lone surrogate (U+D800..U+DFFF), which is not valid Unicode"
    return None


def text_problems(value: t.Any, path: str = "") -> list[dict[str, str]]:
    """Every string (key or value) in a parsed JSON body that holds NUL or a lone surrogate, by field path."""
    found: list[dict[str, str]] = []

    def walk(node: t.Any, where: str) -> None:
        if len(found) >= MAX_FIELD_ERRORS:
            return
        if isinstance(node, str):
            problem = _text_problem(node)
            if problem:
                found.append({"field": (where or "(body)")[:200], "message": problem})
        elif isinstance(node, dict):
            for key, item in node.items():
                name = f"{where}.{key}" if where else str(key)
                key_problem = _text_problem(key)
                if key_problem:
                    found.append({"field": echo(name)[:200], "message": "property name " + key_problem})
                    continue
                walk(item, name)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{where}[{i}]")

    walk(value, path)
    return found
